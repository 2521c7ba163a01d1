"""QR code images of a provisioning payload, as PNG and SVG."""

import copy
import io
from functools import lru_cache

import qrcode
import qrcode.image.svg
from qrcode.util import BIT_LIMIT_TABLE, MODE_8BIT_BYTE, QRData, length_in_bits

from portal.android.payload import MAX_PAYLOAD_BYTES

ERROR_CORRECTION = "M"
BORDER = 4  # modules of quiet zone, the minimum the QR standard asks for
_CACHE_SIZE = 256


@lru_cache(maxsize=_CACHE_SIZE)
def qr_version(text: str) -> int:
    """Return the QR version (1–40) the rendered code uses at error correction M.

    Raises ValueError if the text is over MAX_PAYLOAD_BYTES, so it cannot be drawn at all.
    """
    return _symbol(text).version


def version_for_size(size: int) -> int:
    """The version qr_version() gives a text of `size` UTF-8 bytes, from the capacity table
    alone: thousands of times cheaper than drawing the symbol (for bulk data)."""
    limits = BIT_LIMIT_TABLE[qrcode.constants.ERROR_CORRECT_M]
    for version in range(1, 41):
        if 4 + length_in_bits(MODE_8BIT_BYTE, version) + 8 * size <= limits[version]:
            return version
    raise ValueError(f"{size} bytes do not fit in a QR code at error correction M.")


@lru_cache(maxsize=_CACHE_SIZE)
def render_png(text: str, box_size: int = 8) -> bytes:
    """Return a 1-bit PNG of the code: level M, a 4-module quiet zone, box_size pixels a module.

    Identical calls return the same cached bytes object; raises ValueError like qr_version.
    """
    symbol = copy.copy(_symbol(text))
    symbol.box_size = box_size
    buffer = io.BytesIO()
    symbol.make_image().save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def modules(text: str) -> list[list[bool]]:
    """The code's modules row by row (True: dark), with its 4-module quiet zone: for drawing
    it at a printed size (portal.provisioning.printing). Raises ValueError like qr_version."""
    return _symbol(text).get_matrix()


@lru_cache(maxsize=_CACHE_SIZE)
def render_svg(text: str) -> bytes:
    """Return an SVG of the code as one <path>, sized in mm with a viewBox so it prints to scale."""
    image = _symbol(text).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="utf-8")


@lru_cache(maxsize=_CACHE_SIZE)
def _symbol(text: str) -> qrcode.QRCode:
    data = text.encode("utf-8")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"The text is {len(data)} bytes, but a QR code at error correction M holds at "
            f"most {MAX_PAYLOAD_BYTES} bytes."
        )
    symbol = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=BORDER, box_size=10
    )
    # Byte mode over UTF-8 keeps non-ASCII SSIDs intact; qrcode's default would split the
    # text into mode-optimised chunks and re-encode it.
    symbol.add_data(QRData(data, mode=MODE_8BIT_BYTE), optimize=0)
    symbol.make(fit=True)
    return symbol
