"""Print batch and Download PDF: the printable sheet (templates/admin/qr_codes/print.html) as a
PDF with one A4 page per QR code, made with fpdf2.

Each page is in its QR code's language, with print.html's own translated texts (the "messages"
catalog; force_locale per page, so a de-CH code prints German and a custom localization falls
back as the sheet does). The QR code is drawn as vector rectangles at a fixed printed size,
QR_SIZE_MM including its 4-module quiet zone. Nothing secret is printed as text: the payload
(which holds the OTP and the Wi-Fi password) only as the QR code itself.
"""
import html
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask_babel import force_locale, gettext
from fontTools.ttLib import TTFont
from fpdf import FPDF
from markupsafe import escape

from portal.android import qr as qr_images
from portal.enrollment.models import QrCode
from portal.i18n import page_language
from portal.vocabulary import EnrollmentOption, Management, NetworkType

QR_SIZE_MM = 60.0  # the printed QR code with its quiet zone: modules × pitch, always this size
PAGE_WIDTH_MM, MARGIN_MM = 210.0, 20.0  # A4 portrait
TEXT_WIDTH_MM = PAGE_WIDTH_MM - 2 * MARGIN_MM
STEP_INDENT_MM, LINE_MM = 7.0, 5.5
# Unicode TrueType fonts from Debian (./dev installs fonts-dejavu-core and fonts-droid-fallback):
# DejaVu Sans covers Latin, Greek, Cyrillic, Arabic and Hebrew; Droid Sans Fallback adds CJK.
FONT_DIR = Path("/usr/share/fonts/truetype")
FONTS = {"": FONT_DIR / "dejavu/DejaVuSans.ttf", "B": FONT_DIR / "dejavu/DejaVuSans-Bold.ttf"}
FALLBACK_FONT = FONT_DIR / "droid/DroidSansFallbackFull.ttf"
# Scripts that need a shaping engine (joined letters, right to left): Hebrew, Arabic, Syriac,
# Thaana, N'Ko, the Indic scripts, Thai… (U+0590–U+0DFF), and Arabic presentation forms.
_COMPLEX = re.compile(r"[\u0590-\u0dff\ufb1d-\ufdff\ufe70-\ufeff]")


class PrintingError(ValueError):
    """Nothing to print: no QR code, or every one is revoked."""


@dataclass(frozen=True)
class Sheets:
    pdf: bytes
    pages: int
    left_out: int  # revoked QR codes, not printed


# A batch prints in parts of at most this many pages: one part is a few seconds of one core
# (about 60 pages a second, docs/benchmarks.md), well within a web worker's timeout, where a
# 2,000-page PDF at once would not be.
PART_PAGES = 250


def print_parts(active: int) -> list[tuple[int, int, int]]:
    """(part, first, last) for a batch of `active` printable QR codes (1-based, inclusive);
    one part when they fit in PART_PAGES."""
    return [(index // PART_PAGES + 1, index + 1, min(index + PART_PAGES, active))
            for index in range(0, active, PART_PAGES)]


def in_part(items: list, part: int) -> list:
    """The items that part `part` (1-based) of print_parts prints."""
    return items[(part - 1) * PART_PAGES:part * PART_PAGES]


def sheets_pdf(qr_codes: Iterable[QrCode]) -> bytes:
    """One A4 page per QR code, in the given order; revoked QR codes are left out (see
    print_sheets for how many). Raises PrintingError when none is left to print."""
    return print_sheets(qr_codes).pdf


def print_sheets(qr_codes: Iterable[QrCode]) -> Sheets:
    """sheets_pdf with its count: pages printed and revoked QR codes left out."""
    codes = list(qr_codes)
    printable = [qr for qr in codes if not qr.is_revoked]
    if not printable:
        raise PrintingError("There is nothing to print: every QR code is revoked."
                            if codes else "There is nothing to print: no QR code.")
    pages = [_page_texts(qr) for qr in printable]
    fallback = [_beyond_main_font(page.all_text()) for page in pages]
    pdf = _document(needs_fallback=any(fallback))
    left_out = len(codes) - len(printable)
    pdf.set_subject(f"{len(pages)} of {len(codes)} QR codes"
                    + (f"; {left_out} revoked, left out" if left_out else ""))
    for page, needs_fallback in zip(pages, fallback):
        # Looking up the fallback font and the shaping engine are slow: only on the pages whose
        # texts need them (CJK; the joined and right-to-left scripts).
        pdf.set_fallback_fonts(["fallback"] if needs_fallback else [], exact_match=False)
        pdf.set_text_shaping(bool(_COMPLEX.search(page.all_text())))
        _draw_page(pdf, page)
    buffer = io.BytesIO()
    pdf.output(buffer)
    return Sheets(buffer.getvalue(), len(pages), left_out)


@dataclass(frozen=True)
class _Page:
    """One sheet's texts, already translated; `steps` and `note` are print.html's markup."""
    payload: str
    title: str
    person: str
    qr_name: str
    steps: list[str]
    facts: list[tuple[str, str]]
    note: str

    def all_text(self) -> str:
        return " ".join([self.title, self.person, self.qr_name, *self.steps, self.note,
                         *(text for fact in self.facts for text in fact)])


def follow_step(qr: QrCode, *, name: str) -> str:
    """The sheet's last step (print.html's markup), translated in the current locale: what the
    device's user follows after the scan, the Companion or Android Device Policy."""
    auto = qr.option == EnrollmentOption.AUTO
    if qr.management == Management.ADP:
        return gettext(
            "<strong>Follow Android Device Policy</strong>: it installs, enrolls the device "
            "for %(name)s without typing, and finishes the setup.", name=name) if auto \
            else gettext("<strong>Follow Android Device Policy</strong>: it installs, opens "
                         "your company's sign-in page, and finishes the setup after you sign "
                         "in.")
    return gettext(
        "<strong>Follow the Companion app</strong>: it installs, enrolls the device for "
        "%(name)s without typing, and finishes the setup.", name=name) if auto \
        else gettext("<strong>Follow the Companion app</strong>: it installs, asks you to "
                     "sign in with your company account and press Start, and finishes the "
                     "setup.")


def _page_texts(qr: QrCode) -> _Page:
    """print.html's texts for one QR code, in its language (values escaped: the texts are
    HTML, as in the template)."""
    with force_locale(page_language(qr.lang)):
        auto = qr.option == EnrollmentOption.AUTO
        name = (qr.user.display_name or qr.user.username) if auto else ""
        if qr.network == NetworkType.WIFI:
            network = gettext("The device joins the Wi-Fi network “%(ssid)s” by itself.",
                              ssid=escape(qr.wifi_ssid))
        else:
            network = gettext("The device uses mobile data: keep the SIM or eSIM in it.")
        follow = follow_step(qr, name=escape(name))
        steps = [
            gettext("Switch on the new or factory-reset device and stay on the <strong>welcome "
                    "screen</strong>."),
            gettext("<strong>Tap the same spot on the welcome screen six times</strong> in a "
                    "row. The device opens a QR-code reader (older devices first connect to a "
                    "network to download one)."),
            f"<strong>{gettext('Scan this QR code.')}</strong> {network}",
            follow,
        ]
        expiry = qr.otp_expires_at.strftime("%Y-%m-%d %H:%M") + " UTC" \
            if auto and qr.otp_expires_at else gettext("no expiry")
        facts = [(gettext("Language"), qr.lang), (gettext("Valid until"), expiry)]
        if auto:
            facts.append((gettext("Devices"), gettext("up to %(count)s", count=qr.usage_count)))
        facts.append((gettext("Code"), gettext("%(code)s (QR version %(version)s)",
                                               code=qr.public_id, version=qr.qr_version)))
        if auto:
            person = gettext("For %(name)s", name=_person(qr.user.display_name,
                                                          qr.user.username))
        else:
            person = gettext("Self Service Portal: sign in with your company account")
        return _Page(
            payload=qr.payload_text(),
            title=gettext("Set up your company device"),
            person=person,
            qr_name=gettext("QR code: %(name)s", name=qr.name) if qr.name else "",
            steps=steps, facts=facts,
            note=gettext("Keep this sheet private: the code lets a device join your company. "
                         "Devices registered in Zero-Touch or Knox Mobile Enrollment do not use "
                         "this code."))


def _person(display_name: str | None, username: str) -> str:
    """"Zoë Łukasiewicz (zoe)", or the user name alone where it is all there is."""
    if display_name and display_name != username:
        return f"{display_name} ({username})"
    return username


def _document(*, needs_fallback: bool) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(False)  # one page per QR code, always
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_creator("Advanced QR-Code Provisioning")
    pdf.set_title("QR codes to set up devices")
    for style, path in FONTS.items():
        _require(path)
        pdf.add_font("main", style, str(path))
    if needs_fallback:  # Droid Sans Fallback is 4 MB: read only when a page needs it
        _require(FALLBACK_FONT)
        pdf.add_font("fallback", "", str(FALLBACK_FONT))
    return pdf


def _require(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"The font {path} is missing: install fonts-dejavu-core and "
                            "fonts-droid-fallback (./dev does).")


@lru_cache(maxsize=1)
def _main_font_characters() -> frozenset[int]:
    font = TTFont(str(FONTS[""]), lazy=True)
    return frozenset(font.getBestCmap())


def _beyond_main_font(text: str) -> bool:
    covered = _main_font_characters()
    return any(ord(char) not in covered and not unicodedata.category(char).startswith("Z")
               for char in text if ord(char) > 0x7f)


def _draw_page(pdf: FPDF, page: _Page) -> None:
    pdf.add_page()
    pdf.set_text_color(0)
    pdf.set_font("main", "B", 20)
    pdf.set_xy(MARGIN_MM, MARGIN_MM)
    pdf.multi_cell(TEXT_WIDTH_MM, 9, page.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("main", "B", 14)
    pdf.multi_cell(TEXT_WIDTH_MM, 7, page.person, align="C", new_x="LMARGIN", new_y="NEXT")
    if page.qr_name:
        pdf.set_font("main", "", 12)
        pdf.multi_cell(TEXT_WIDTH_MM, 6, page.qr_name, align="C", new_x="LMARGIN",
                       new_y="NEXT")
    top = max(pdf.get_y() + 4, 50.0)
    _draw_qr(pdf, page.payload, (PAGE_WIDTH_MM - QR_SIZE_MM) / 2, top)
    pdf.set_xy(MARGIN_MM, top + QR_SIZE_MM + 4)
    for number, step in enumerate(page.steps, start=1):
        pdf.set_font("main", "B", 11)
        pdf.cell(STEP_INDENT_MM, LINE_MM, f"{number}.")
        pdf.set_left_margin(MARGIN_MM + STEP_INDENT_MM)
        for bold, text in _segments(step):
            pdf.set_font("main", "B" if bold else "", 11)
            pdf.write(LINE_MM, text)
        pdf.set_left_margin(MARGIN_MM)
        pdf.ln(LINE_MM + 1.5)
    pdf.ln(3)
    for label, value in page.facts:
        pdf.set_font("main", "B", 10)
        pdf.cell(40, 6, label)
        pdf.set_font("main", "", 10)
        pdf.multi_cell(TEXT_WIDTH_MM - 40, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("main", "", 9)
    pdf.multi_cell(TEXT_WIDTH_MM, 4.5, page.note, align="L", new_x="LMARGIN", new_y="NEXT")


def _segments(markup: str) -> list[tuple[bool, str]]:
    """print.html's markup ("<strong>Tap …</strong> in a row.") as (bold, text) runs; the
    values in it were escaped, so a name with "<" in it stays text."""
    runs = []
    for index, part in enumerate(re.split(r"</?strong>", markup)):
        if part:
            runs.append((index % 2 == 1, html.unescape(part)))
    return runs


def _draw_qr(pdf: FPDF, payload: str, left: float, top: float) -> None:
    """The modules as black rectangles (one per run of dark modules in a row) on white: the
    quiet zone is the white around them, QR_SIZE_MM wide in all.

    The thousands of rectangles of a dense code go into the page as one filled path, written
    as fpdf2's rect() writes each ("x y w h re", in points from the bottom left): through rect()
    they would cost more than all the rest of the page."""
    rows = qr_images.modules(payload)
    pitch = QR_SIZE_MM / len(rows)
    pdf.set_fill_color(255)
    pdf.rect(left, top, QR_SIZE_MM, QR_SIZE_MM, style="F")
    pdf.set_fill_color(0)
    k, height = pdf.k, pdf.h
    # A hair taller than a module, so no anti-aliased seam shows between rows.
    module_height = -(pitch + 0.01) * k
    operators = []
    for y, row in enumerate(rows):
        top_of_row = (height - (top + y * pitch)) * k
        x, width = 0, len(row)
        while x < width:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < width and row[x]:
                x += 1
            operators.append(f"{(left + start * pitch) * k:.3f} {top_of_row:.3f} "
                             f"{(x - start) * pitch * k:.3f} {module_height:.3f} re")
    operators.append("f")
    pdf._out("\n".join(operators))  # pylint: disable=protected-access
