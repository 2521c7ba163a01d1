"""Reading the portal's PDFs back as a printer would put them on paper: poppler's pdftoppm
renders each page at 300 dpi, pdftotext gives its text, zxing-cpp reads its QR code."""
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.support.qr import qr_codes

DPI = 300
MM_PER_INCH = 25.4


def page_texts(pdf: bytes, tmp_path: Path) -> list[str]:
    """The text of every page (pdftotext separates pages with a form feed)."""
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    return text.split("\f")[:-1]


def page_images(pdf: bytes, tmp_path: Path) -> list[Image.Image]:
    """Every page as an 8-bit grey image at 300 dpi."""
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(path),
                    str(tmp_path / "page")], check=True)
    return [Image.open(png).convert("L") for png in sorted(tmp_path.glob("page-*.png"))]


@dataclass(frozen=True)
class PrintedQr:
    text: str
    size_mm: float          # the whole symbol with its quiet zone, as printed
    quiet_zone_white: bool  # the four modules around the symbol hold no dark pixel


def printed_qr(image: Image.Image, version: int) -> PrintedQr:
    """The one QR code on a page: its text, its printed size with the 4-module quiet zone
    (module pitch measured on the image × modules) and whether that quiet zone is white."""
    found = qr_codes(image)
    assert len(found) == 1, found
    pos = found[0].position
    xs = [p.x for p in (pos.top_left, pos.top_right, pos.bottom_left, pos.bottom_right)]
    ys = [p.y for p in (pos.top_left, pos.top_right, pos.bottom_left, pos.bottom_right)]
    modules = 17 + 4 * version
    guess = (max(xs) - min(xs)) / modules  # about one module, to look just around the symbol
    box = (int(min(xs) - 2 * guess), int(min(ys) - 2 * guess),
           int(max(xs) + 2 * guess), int(max(ys) + 2 * guess))
    dark = image.crop(box).point(lambda v: 255 if v < 128 else 0).getbbox()
    left, top, right, bottom = (box[0] + dark[0], box[1] + dark[1],
                                box[0] + dark[2], box[1] + dark[3])
    pitch = ((right - left) + (bottom - top)) / 2 / modules
    quiet = round(4 * pitch)
    around = image.crop((left - quiet, top - quiet, right + quiet, bottom + quiet)).copy()
    around.paste(255, (quiet - 1, quiet - 1, quiet + right - left + 1, quiet + bottom - top + 1))
    return PrintedQr(found[0].text, pitch * (modules + 8) / DPI * MM_PER_INCH,
                     around.getextrema()[0] > 200)
