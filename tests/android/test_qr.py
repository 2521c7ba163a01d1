"""Rendered QR codes decode to exactly the payload, at level M, with a quiet zone, and are cached."""

import dataclasses
import io
import re
import uuid
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from portal.android.payload import (
    MAX_PAYLOAD_BYTES,
    WARN_VERSION,
    CompanionConfig,
    PayloadSettings,
    build_payload,
    encode_payload,
    payload_bytes,
)
from portal.android.qr import (ERROR_CORRECTION, qr_version, render_png, render_svg,
                               version_for_size)
from portal.otp import for_qr_code
from tests.support.qr import qr_codes

QUIET_ZONE_MODULES = 4
SVG_NS = "{http://www.w3.org/2000/svg}"

# The contract's "typical automatic Wi-Fi payload" (about 800 bytes): a Companion named like the
# quick start's, a 12-character qr_id and a 16-character OTP (96 bits, as the portal makes them),
# a WPA network.
TYPICAL = PayloadSettings(
    companion=CompanionConfig(
        component_name="com.example.companion/.AdminReceiver",
        download_url="https://mdm.example.com/companion/companion-2.10.apk",
        signature_checksum="I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg",
    ),
    server_url="https://portal.example.com",
    option="auto",
    qr_id="Ab3dEf6hIj9k",
    lang="de-CH",
    network="wifi",
    wifi_ssid="Corp-Guest-5G",
    wifi_security_type="WPA",
    wifi_password="Tr0ub4dor&3-horse-77",
    user="alice.smith@example.com",
    otp="Q7x9K2m4Pz8w-_aB",
)
# Longer than typical on every field an admin controls: still below the warning version.
LONG = dataclasses.replace(
    TYPICAL,
    companion=CompanionConfig(
        component_name="com.example.companion/.receivers.CompanionAdminReceiver",
        download_url="https://downloads.example.com/mdm/companion-release-2.10.apk",
        signature_checksum="I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg",
    ),
    qr_id="Ab3dEf6hIj9kLm0n",
)
ITALIAN_CAFE = PayloadSettings(
    companion=TYPICAL.companion,
    server_url="https://portal.example.com",
    option="ssp",
    qr_id="Zy8xWv7uTs6r",
    lang="it",
    network="wifi",
    wifi_ssid="Café-Zürich",
    wifi_security_type="NONE",
)


def decode_png(png: bytes):
    results = qr_codes(png)
    assert len(results) == 1
    return results[0]


def test_the_qr_codes_otp_is_as_long_as_the_typical_payload_says():
    otp = for_qr_code()
    assert len(otp) == len(TYPICAL.otp) == 16 and re.fullmatch(r"[A-Za-z0-9_-]{16}", otp)


def test_typical_automatic_wifi_payload_fits_version_23():
    text = encode_payload(build_payload(TYPICAL))
    version = qr_version(text)
    print(f"\ntypical automatic Wi-Fi payload: {payload_bytes(text)} bytes, QR version {version} at M")
    assert 750 <= payload_bytes(text) <= 857  # 857 bytes is what version 23 holds at M
    assert version <= 23


def test_long_automatic_wifi_payload_stays_below_the_warning_version():
    text = encode_payload(build_payload(LONG))
    version = qr_version(text)
    print(f"\nlong automatic Wi-Fi payload: {payload_bytes(text)} bytes, QR version {version} at M")
    assert version <= WARN_VERSION


@pytest.mark.parametrize("settings", [TYPICAL, ITALIAN_CAFE], ids=["typical", "cafe-zurich-it"])
def test_png_decodes_to_exactly_the_payload_at_level_m(settings):
    text = encode_payload(build_payload(settings))
    barcode = decode_png(render_png(text))
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.text == text
    assert barcode.bytes == text.encode("utf-8")
    assert barcode.ec_level == ERROR_CORRECTION == "M"
    assert int(barcode.extra["Version"]) == qr_version(text)


def test_png_keeps_a_white_quiet_zone_of_four_modules():
    box_size = 5
    text = encode_payload(build_payload(ITALIAN_CAFE))
    image = Image.open(io.BytesIO(render_png(text, box_size=box_size)))
    assert image.mode in ("1", "L")
    grey = image.convert("L")
    modules = 17 + 4 * qr_version(text) + 2 * QUIET_ZONE_MODULES
    assert grey.size == (modules * box_size, modules * box_size)
    quiet = QUIET_ZONE_MODULES * box_size
    width, height = grey.size
    for box in [(0, 0, width, quiet), (0, height - quiet, width, height),
                (0, 0, quiet, height), (width - quiet, 0, width, height)]:
        assert grey.crop(box).getextrema() == (255, 255)
    # The finder pattern's corner sits right after the quiet zone.
    assert grey.getpixel((quiet, quiet)) == 0


def test_svg_is_a_single_path_with_a_viewbox_and_print_size():
    text = encode_payload(build_payload(TYPICAL))
    root = ET.fromstring(render_svg(text))
    modules = 17 + 4 * qr_version(text) + 2 * QUIET_ZONE_MODULES
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("viewBox") == f"0 0 {modules} {modules}"
    assert root.get("width") == root.get("height") == f"{modules}mm"
    assert [child.tag for child in root] == [f"{SVG_NS}path"]


def test_svg_path_draws_a_code_that_decodes_to_the_payload():
    text = encode_payload(build_payload(ITALIAN_CAFE))
    root = ET.fromstring(render_svg(text))
    modules = int(root.get("viewBox").split()[2])
    scale = 4
    image = Image.new("L", (modules * scale, modules * scale), 255)
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)", root[0].get("d")):
        box = [round(float(value) * scale) for value in (x0, y0, x1, y1)]
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], fill=0)
    assert [code.text for code in qr_codes(image)] == [text]


def test_largest_payload_fits_version_40_and_one_byte_more_does_not():
    assert qr_version("é" * (MAX_PAYLOAD_BYTES // 2) + "a") == 40
    with pytest.raises(ValueError, match="2332 bytes"):
        qr_version("a" * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="at most 2331 bytes"):
        render_png("é" * (MAX_PAYLOAD_BYTES // 2 + 1))


def test_second_render_of_the_same_payload_is_a_cache_hit():
    # The very object the first render made comes back: nothing was drawn again (how much
    # faster that is belongs in a benchmark, not in a timing a busy machine can upset).
    text = encode_payload(build_payload(TYPICAL)).replace(TYPICAL.qr_id, uuid.uuid4().hex)
    first = render_png(text)
    assert render_png(text) is first
    assert render_png(text + "x") is not first
    assert render_svg(text) is render_svg(text)


@pytest.mark.parametrize("size", [1, 14, 15, 100, 500, 1000, 1500, 2000, 2331])
def test_version_for_size_agrees_with_the_drawn_symbol(size):
    assert version_for_size(size) == qr_version("x" * size)
