"""Reading a provisioning QR: an image decoded with zxing-cpp, or a file of decoded text."""
import io
from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError


class ReadError(ValueError):
    pass


def read_qr(path: str) -> str:
    """The text inside the QR code image (PNG, JPEG, …) or the text file at path."""
    data = Path(path).read_bytes()
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ReadError(f"{path} is neither an image nor UTF-8 text.") from None
    # QR codes only, as a device's setup wizard scans: zxing-cpp looking for every format also
    # finds an EAN-13 or a Codabar inside about one provisioning QR code in 400.
    codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    if not codes:
        raise ReadError(f"No QR code found in {path}.")
    if len(codes) > 1:
        raise ReadError(f"{path} holds {len(codes)} QR codes; a device scans one.")
    return codes[0].text
