"""The message catalogs: every text of the end user's pages translated into German and Italian."""
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from portal.i18n import SUPPORTED, TRANSLATIONS_DIR, compile_catalogs, supported_language

ROOT = Path(__file__).resolve().parents[1]


def _extracted() -> set[str]:
    """The msgids the code uses now, extracted with the project's own babel.cfg."""
    from babel.messages.frontend import parse_mapping_cfg
    with open(ROOT / "babel.cfg") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("lang", [lang for lang in SUPPORTED if lang != "en"])
def test_every_message_of_the_portal_pages_is_translated(lang):
    extracted = _extracted()
    assert len(extracted) > 30  # the extraction found the pages' texts at all
    with open(TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=lang)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(extracted - translated)
    assert not missing, f"untranslated in {lang}: {missing}"


def test_placeholders_survive_translation():
    for lang in ("de", "it"):
        with open(TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
            catalog = read_po(handle, locale=lang)
        with_placeholders = [m for m in catalog if m.id and "%(" in m.id]
        assert with_placeholders, f"no message with a placeholder in {lang}"
        for message in with_placeholders:
            assert set(_names(message.id)) == set(_names(message.string)), message.id


def _names(text: str) -> list[str]:
    import re
    return re.findall(r"%\((\w+)\)s", text)


def test_stale_catalogs_are_compiled_again(tmp_path):
    po = TRANSLATIONS_DIR / "de" / "LC_MESSAGES" / "messages.po"
    target = tmp_path / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes(po.read_bytes())
    assert compile_catalogs(tmp_path) == [target / "messages.mo"]
    assert compile_catalogs(tmp_path) == []  # up to date: nothing written


@pytest.mark.parametrize("tag,expected", [("de-CH", "de"), ("de_AT", "de"), ("it", "it"),
                                          ("en-GB", "en"), ("fr-CA", None), ("", None),
                                          ("not a tag", None)])
def test_localizations_map_to_the_supported_languages(tag, expected):
    assert supported_language(tag) == expected
