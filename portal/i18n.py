"""Languages of the pages and mail end users see: English, German, Italian (Flask-Babel).

The catalogs live in translations/<lang>/LC_MESSAGES/<domain>.po; create_app compiles any .mo
that is missing or older than its .po, so a fresh clone needs no extra build step.
"""
import os
import tempfile
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import g, has_request_context, request, session

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
SUPPORTED = ("en", "de", "it")
DEFAULT = "en"
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "it": "Italiano"}  # each in itself
ENGLISH_NAMES = {"en": "English", "de": "German", "it": "Italian"}  # for the console


def supported_language(tag: str | None) -> str | None:
    """The supported language for a tag: "de-CH" → "de", "it_IT" → "it", "fr-CA" → None."""
    if not tag:
        return None
    try:
        language = Locale.parse(tag.replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        language = tag.replace("_", "-").split("-")[0].lower()
    return language if language in SUPPORTED else None


def page_language(tag: str | None) -> str:
    """The language of a localization's portal pages, mail and printable sheet: its own where
    translated, else English ("de-CH" → "de", "fr-CA" → "en")."""
    return supported_language(tag) or DEFAULT


def fallback_language(tag: str | None) -> str | None:
    """For a localization without translations of its own, the (English) name of the language
    its pages and mail fall back to ("fr-CA" → "English"); None where it has them."""
    return None if supported_language(tag) else ENGLISH_NAMES[DEFAULT]


def use_language(tag: str | None) -> None:
    """Ask for this request's pages in the language of a tag (e.g. the QR's localization)."""
    g.portal_language_hint = tag


def select_locale() -> str:
    """The end user's own choice first, then the QR's localization, then the browser, then
    English."""
    if not has_request_context():
        return DEFAULT
    for candidate in (session.get("lang"), g.get("portal_language_hint")):
        language = supported_language(candidate)
        if language:
            return language
    return request.accept_languages.best_match(SUPPORTED) or DEFAULT


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile every .po whose .mo is missing or stale; returns the .mo files written."""
    written = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        # Several workers may start at once: write aside, then rename atomically.
        fd, tmp = tempfile.mkstemp(dir=po_path.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as handle:
            write_mo(handle, catalog)
        os.replace(tmp, mo_path)
        written.append(mo_path)
    return written
