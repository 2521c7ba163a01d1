"""Localizations: built-ins kept, custom tags validated as Android parses them, audit recorded."""
import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.settings.localizations import (LocalizationError, add_localization,
                                           all_localizations, delete_localization, is_known)
from portal.settings.models import Localization


def _tags(db):
    return [localization.tag for localization in all_localizations()]


def _events(db):
    return [(e.action, e.actor, e.target) for e in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("settings.localization.%"))
        .order_by(AuditEvent.id))]


def test_the_built_in_localizations_come_first_in_their_order(db):
    add_localization("af", "Afrikaans", actor="alice")

    assert _tags(db) == ["en", "de-CH", "it", "af"]
    assert [loc.builtin for loc in all_localizations()] == [True, True, True, False]


@pytest.mark.parametrize("typed, stored", [
    ("fr-CH", "fr-CH"), ("fr-ch", "fr-CH"), ("PT-br", "pt-BR"), ("rm", "rm"),
    ("zh-hans-cn", "zh-Hans-CN"), ("es-419", "es-419"), (" nl-BE ", "nl-BE"),
])
def test_a_well_formed_tag_is_added_in_canonical_case_and_recorded(db, typed, stored):
    add_localization(typed, "  Custom  ", actor="alice")

    row = db.session.scalar(sa.select(Localization).where(Localization.tag == stored))
    assert (row.name, row.builtin) == ("Custom", False)
    assert is_known(stored.upper()) and is_known(stored.lower())
    assert _events(db) == [("settings.localization.add", "alice", stored)]


@pytest.mark.parametrize("tag, name, field, fragment", [
    ("de_CH", "German", "tag", '"de-CH" instead of "de_CH"'),
    ("x", "X", "tag", "not a valid language tag"),
    ("", "Empty", "tag", "not a valid language tag"),
    ("fr-CH-extra", "French", "tag", "not a valid language tag"),
    ("fr CH", "French", "tag", "not a valid language tag"),
    ("DE-ch", "German again", "tag", "exists already"),
    ("IT", "Italian again", "tag", "exists already"),
    ("fr-CH", "", "name", "1 to 64 characters"),
    ("fr-CH", "   ", "name", "1 to 64 characters"),
    ("fr-CH", "N" * 65, "name", "1 to 64 characters"),
    ("fr-CH", "French\nSwiss", "name", "1 to 64 characters"),
])
def test_bad_tags_and_names_are_refused_naming_the_field_and_nothing_is_written(
        db, tag, name, field, fragment):
    with pytest.raises(LocalizationError) as raised:
        add_localization(tag, name, actor="alice")

    assert list(raised.value.errors) == [field]
    assert fragment in raised.value.message
    assert _tags(db) == ["en", "de-CH", "it"]
    assert _events(db) == []


def test_a_custom_localization_is_deleted_by_its_tag_in_any_case_and_recorded(db):
    add_localization("fr-CH", "French (Switzerland)", actor="alice")

    delete_localization("FR-ch", actor="bob")

    assert not is_known("fr-CH")
    assert _events(db)[-1] == ("settings.localization.delete", "bob", "fr-CH")


@pytest.mark.parametrize("tag, fragment", [("de-CH", "built in"), ("en", "built in"),
                                           ("fr-CH", "no localization")])
def test_built_in_and_unknown_localizations_cannot_be_deleted(db, tag, fragment):
    with pytest.raises(LocalizationError) as raised:
        delete_localization(tag, actor="bob")

    assert fragment in raised.value.message
    assert _tags(db) == ["en", "de-CH", "it"]
    assert _events(db) == []
