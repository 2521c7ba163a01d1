"""Reading the portal's QR codes back, as a device's camera does: QR codes only.

zxing-cpp asked for every format also finds an EAN-13 or a Codabar inside about one
provisioning QR code in 400 (tests/simulator/test_reader.py keeps one such payload). With
random OTPs and ids, that made a browser test fail in one of 14 runs of tests/browser here.
"""
import io

import zxingcpp
from PIL import Image


def qr_codes(image) -> list:
    """Every QR code in a PIL image or in PNG bytes."""
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)


def decode_qr(png: bytes) -> str:
    """The text of the one QR code in a PNG."""
    found = qr_codes(png)
    assert len(found) == 1, found
    return found[0].text
