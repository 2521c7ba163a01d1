"""The simulator's QR reader (portal.simulator.reader): one QR code per image, as a device scans."""
import io
import json

import pytest
from PIL import Image

from portal.android.qr import render_png
from portal.simulator.reader import ReadError, read_qr

PREFIX = "android.app.extra."

# A provisioning payload in whose QR code zxing-cpp 3.1, asked for every format, also finds a
# Codabar symbol ("B4.C"): found by rendering 2,055 payloads that differ only in their ids.
# One QR code in about 400 holds such a stray 1-D symbol; tests decoding random OTPs met one.
CODABAR_TRAP = json.dumps({
    PREFIX + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": "com.example.companion/.AdminReceiver",
    PREFIX + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION":
        "https://downloads.example.com/companion-2.4.1.apk",
    PREFIX + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM":
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
    PREFIX + "PROVISIONING_WIFI_SSID": "Warehouse",
    PREFIX + "PROVISIONING_WIFI_PASSWORD": "forklift-2024",
    PREFIX + "PROVISIONING_WIFI_SECURITY_TYPE": "WPA",
    PREFIX + "PROVISIONING_LOCALE": "it",
    PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
        "server_url": "https://portal.example.com", "option": "auto", "qr_id": "Q00000002054",
        "lang": "it", "user": "alice", "otp": "000000002054"},
}, separators=(",", ":"))


def write(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def side_by_side(*pngs: bytes) -> bytes:
    images = [Image.open(io.BytesIO(png)) for png in pngs]
    canvas = Image.new("L", (sum(i.width for i in images), max(i.height for i in images)), 255)
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def test_a_stray_one_dimensional_symbol_inside_the_qr_code_is_not_a_second_code(tmp_path):
    assert read_qr(write(tmp_path, "qr.png", render_png(CODABAR_TRAP))) == CODABAR_TRAP


def test_two_qr_codes_in_one_image_are_refused(tmp_path):
    path = write(tmp_path, "two.png", side_by_side(render_png('{"a":1}'), render_png('{"b":2}')))
    with pytest.raises(ReadError, match=r"holds 2 QR codes; a device scans one"):
        read_qr(path)


def test_an_image_without_a_qr_code_is_refused(tmp_path):
    out = io.BytesIO()
    Image.new("L", (200, 200), 255).save(out, format="PNG")
    with pytest.raises(ReadError, match=r"No QR code found in .*blank\.png"):
        read_qr(write(tmp_path, "blank.png", out.getvalue()))


def test_a_text_file_is_taken_as_the_decoded_payload(tmp_path):
    assert read_qr(write(tmp_path, "payload.txt", b'  {"a":1}\n')) == '{"a":1}'


def test_a_file_that_is_neither_image_nor_text_is_refused(tmp_path):
    with pytest.raises(ReadError, match=r"neither an image nor UTF-8 text"):
        read_qr(write(tmp_path, "noise.bin", b"\xff\xfe\x00\x81 not an image"))
