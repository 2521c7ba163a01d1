"""Companion settings: the environment seeds them, the saved row wins, Android's rules apply."""
import pytest
import sqlalchemy as sa

from portal.android.payload import CompanionConfig, validate_companion
from portal.audit.models import AuditEvent
from portal.settings import companion
from portal.settings.companion import (EXAMPLE_CHECKSUM, EXAMPLE_COMPONENT, EXAMPLE_DOWNLOAD_URL,
                                       CompanionError, save_companion)
from portal.settings.models import CompanionSettings

COMPONENT = "ch.acme.companion/.AdminReceiver"
URL = "https://mdm.acme.ch/companion.apk"
CHECKSUM = "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg"
GOOD = (COMPONENT, URL, CHECKSUM, False, "acme-companion")
ENV = {"COMPANION_COMPONENT_NAME": "org.env.app/.Receiver",
       "COMPANION_DOWNLOAD_URL": "https://env.example.org/app.apk",
       "COMPANION_SIGNATURE_CHECKSUM": CHECKSUM}


def _events(db):
    return db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "settings.companion")).all()


def test_nothing_configured_means_no_companion_and_the_default_scheme(db):
    assert companion.current() is None
    assert companion.source() is None
    assert companion.enrollment_link_scheme() == "companion"


@pytest.mark.parametrize("config_overrides", [ENV], indirect=True)
def test_the_environment_seeds_the_companion_until_the_console_saves_it(db, config_overrides):
    assert companion.current() == CompanionConfig(ENV["COMPANION_COMPONENT_NAME"],
                                                  ENV["COMPANION_DOWNLOAD_URL"], CHECKSUM, True)
    assert companion.source() == "environment"

    save_companion(*GOOD, actor="alice")

    assert companion.current() == CompanionConfig(COMPONENT, URL, CHECKSUM, False)
    assert companion.source() == "saved"
    assert companion.enrollment_link_scheme() == "acme-companion"


def test_save_upserts_row_1_and_records_every_value_with_the_admin(db):
    save_companion(*GOOD, actor="alice")
    save_companion(COMPONENT, URL, CHECKSUM, True, "companion", actor="bob")

    rows = db.session.scalars(sa.select(CompanionSettings)).all()
    assert [(r.id, r.leave_system_apps_enabled, r.enrollment_link_scheme) for r in rows] == [
        (1, True, "companion")]
    first, second = _events(db)
    assert (first.actor_type, first.actor, second.actor) == ("admin", "alice", "bob")
    assert first.details == {"component_name": COMPONENT, "download_url": URL,
                             "signature_checksum": CHECKSUM, "leave_system_apps_enabled": False,
                             "enrollment_link_scheme": "acme-companion"}


BAD = {
    "component_without_slash": (0, "ch.acme.companion.AdminReceiver", "component_name"),
    "component_one_part_package": (0, "companion/.AdminReceiver", "component_name"),
    "component_too_long": (0, "ch.acme." + "a" * 250 + "/.R", "component_name"),
    "http_download_url": (1, "http://mdm.acme.ch/companion.apk", "download_url"),
    "download_url_without_host": (1, "https:///companion.apk", "download_url"),
    "checksum_with_plus": (2, "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEX+g", "signature_checksum"),
    "checksum_with_space": (2, "I5YvS0O5hXY46mb01BlRj q4oJJGs2kuUcHvVkAPEXlg",
                            "signature_checksum"),
    "checksum_of_20_bytes": (2, "qZk-NkcGgWq6PiVxeFDCbJzQ2J0", "signature_checksum"),
    "checksum_empty": (2, "", "signature_checksum"),
    "scheme_http": (4, "http", "enrollment_link_scheme"),
    "scheme_javascript": (4, "javascript", "enrollment_link_scheme"),
    "scheme_upper_case": (4, "Companion", "enrollment_link_scheme"),
    "scheme_one_letter": (4, "c", "enrollment_link_scheme"),
    "scheme_33_chars": (4, "c" * 33, "enrollment_link_scheme"),
    "scheme_with_colon": (4, "companion:", "enrollment_link_scheme"),
}


@pytest.mark.parametrize("position, value, field", BAD.values(), ids=BAD.keys())
def test_values_android_would_refuse_are_refused_by_field_and_nothing_is_written(
        db, position, value, field):
    values = list(GOOD)
    values[position] = value

    with pytest.raises(CompanionError) as raised:
        save_companion(*values, actor="alice")

    assert list(raised.value.errors) == [field]
    assert db.session.get(CompanionSettings, 1) is None
    assert _events(db) == []


def test_validate_companion_reports_the_three_payload_fields_and_nothing_for_good_values():
    assert validate_companion(CompanionConfig(COMPONENT, URL, CHECKSUM)) == {}
    errors = validate_companion(CompanionConfig("nope", "http://x", "a+b"))
    assert set(errors) == {"component_name", "download_url", "signature_checksum"}


def test_the_quick_start_example_values_are_recognised(db):
    assert companion.is_example(CompanionConfig(EXAMPLE_COMPONENT, EXAMPLE_DOWNLOAD_URL,
                                                EXAMPLE_CHECKSUM))
    assert companion.is_example(CompanionConfig(COMPONENT, URL, EXAMPLE_CHECKSUM))
    assert not companion.is_example(CompanionConfig(COMPONENT, URL, CHECKSUM))
    assert not companion.is_example(None)
