"""The "mail" catalogs: every text of the mail translated into German and Italian, no fuzzy
entry, the same placeholders, and the stored English subject translatable at send time."""
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from portal.i18n import TRANSLATIONS_DIR
from portal.mail.compose import translate
from portal.mail.outbox import SUBJECT

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _extracted() -> set:
    with open(ROOT / "babel-mail.cfg") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    return {message if isinstance(message, str) else tuple(message)
            for _f, _l, message, _c, _x in extract_from_dir(
                str(ROOT), method_map, options_map, keywords=KEYWORDS)}


def _catalog(lang):
    with open(TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "mail.po", "rb") as handle:
        return read_po(handle, locale=lang, domain="mail")


def _names(text: str) -> set:
    return set(re.findall(r"%\((\w+)\)[sd]", text))


@pytest.mark.parametrize("lang", ["de", "it"])
def test_every_text_of_the_mail_is_translated(lang):
    extracted = _extracted()
    assert SUBJECT in extracted and len(extracted) > 20
    catalog = _catalog(lang)
    translated = {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog
                  if m.id and all(m.string if isinstance(m.string, tuple) else [m.string])
                  and not m.fuzzy}
    assert not sorted(map(str, extracted - translated)), f"untranslated in {lang}"
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        for text in strings:
            assert _names(text) == _names(ids[-1]), message.id


@pytest.mark.parametrize("tag, expected", [
    ("de-CH", "Ein Administrator hat ein Gerät für Sie bereitgestellt"),
    ("it", "Un amministratore ha predisposto un dispositivo per te"),
    ("fr-CA", SUBJECT), ("en", SUBJECT)])
def test_the_subject_is_translated_for_the_qr_codes_localization(app, tag, expected):
    assert translate(SUBJECT, tag) == expected
