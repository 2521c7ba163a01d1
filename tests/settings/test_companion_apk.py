"""The Companion from its APK: read (upload or fetch), kept, checked on Save, served."""
import hashlib

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.settings import companion
from portal.settings.companion import CompanionError, fetch_apk, read_uploaded_apk, save_companion
from portal.settings.models import CompanionSettings
from tests.support.apks import COMPONENT, apks, build_apk, https_server  # noqa: F401

URL = "https://mdm.acme.ch/companion.apk"


def _events(db, action):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all()


def _save(apk, **overrides):
    values = {"component_name": apk.facts.component_name, "download_url": URL,
              "signature_checksum": apk.facts.signature_checksum,
              "leave_system_apps_enabled": True, "enrollment_link_scheme": "companion"}
    values.update(overrides)
    return save_companion(*values.values(), actor="alice", apk_sha256=apk.sha256)


def test_an_uploaded_apk_is_read_kept_and_recorded(db, apks):
    data = apks.v2v3.read_bytes()
    apk = read_uploaded_apk(data, actor="alice", filename="companion.apk")

    assert apk.sha256 == hashlib.sha256(data).hexdigest()
    assert (apk.facts.component_name, apk.facts.signature_checksum) == (
        COMPONENT, apks.key_a.checksum)
    assert (companion.apk_folder() / f"{apk.sha256}.apk").read_bytes() == data
    assert companion.stored_apk(apk.sha256) == apk
    [event] = _events(db, "companion.apk_read")
    assert (event.actor, event.details["sha256"], event.details["signature_checksum"],
            event.details["version_code"], event.details["source"]) == (
        "alice", apk.sha256, apks.key_a.checksum, 42, "upload companion.apk")


def test_a_file_that_is_not_an_apk_is_refused_and_nothing_is_kept(db, apks):
    with pytest.raises(CompanionError) as error:
        read_uploaded_apk(apks.not_apk.read_bytes(), actor="alice")
    assert error.value.errors == {"apk": "This file is not an APK."}
    assert not companion.apk_folder().exists() or not any(companion.apk_folder().iterdir())
    assert _events(db, "companion.apk_read") == []


def test_a_file_over_the_limit_is_refused(db, apks, monkeypatch):
    monkeypatch.setattr(companion, "APK_MAX_BYTES", 1000)
    with pytest.raises(CompanionError) as error:
        read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    assert "larger than" in error.value.errors["apk"]


@pytest.mark.parametrize("sha256", ["../../secret_key", "A" * 64, "0" * 63, "", None, "0" * 64])
def test_an_unknown_or_edited_apk_reference_names_nothing(db, sha256):
    assert companion.stored_apk(sha256) is None


def test_save_with_the_apk_records_its_version_and_file_checksum(db, apks):
    apk = read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    _save(apk)
    row = db.session.get(CompanionSettings, 1)
    assert (row.apk_sha256, row.apk_version_code, row.apk_version_name) == (
        apk.sha256, 42, "4.2.0")
    [event] = _events(db, "settings.companion")
    assert event.details["apk_sha256"] == apk.sha256
    assert companion.saved_apk()[0] == apk


def test_a_typed_checksum_that_is_not_the_apks_is_refused_with_both_values(db, apks):
    apk = read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    other = apks.key_b.checksum
    with pytest.raises(CompanionError) as error:
        _save(apk, signature_checksum=other)
    message = error.value.errors["signature_checksum"]
    assert other in message and apks.key_a.checksum in message
    assert db.session.get(CompanionSettings, 1) is None


def test_the_checksum_with_padding_is_the_same_checksum(db, apks):
    apk = read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    _save(apk, signature_checksum=apk.facts.signature_checksum + "=")
    assert db.session.get(CompanionSettings, 1).apk_sha256 == apk.sha256


def test_a_component_that_is_not_the_apks_receiver_is_refused_with_both_values(db, apks):
    apk = read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    with pytest.raises(CompanionError) as error:
        _save(apk, component_name="com.example.companion/.OtherReceiver")
    message = error.value.errors["component_name"]
    assert ".OtherReceiver" in message and COMPONENT in message


def test_an_apk_without_device_admin_receiver_cannot_be_saved(db, apks):
    apk = read_uploaded_apk(apks.no_admin.read_bytes(), actor="alice")
    assert apk.facts.component_name is None
    with pytest.raises(CompanionError) as error:
        _save(apk, component_name=COMPONENT)
    assert "BIND_DEVICE_ADMIN" in error.value.errors["component_name"]


def test_a_rotated_key_apk_saves_with_the_original_certificates_checksum(db, apks):
    apk = read_uploaded_apk(apks.rotated.read_bytes(), actor="alice")
    _save(apk)
    assert db.session.get(CompanionSettings, 1).signature_checksum == apks.key_a.checksum


def test_saving_without_an_apk_forgets_the_one_saved_before(db, apks):
    apk = read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    _save(apk)
    save_companion(COMPONENT, URL, apks.key_b.checksum, True, "companion", actor="bob")
    row = db.session.get(CompanionSettings, 1)
    assert (row.apk_sha256, row.apk_version_code, row.signature_checksum) == (
        None, None, apks.key_b.checksum)
    assert companion.saved_apk() is None


@pytest.fixture
def server(apks):
    with https_server(apks.directory) as running:
        yield running


@pytest.fixture
def trusted(app, server):
    app.config["TRUSTED_CA_FILE"] = server.ca_file
    return server


def test_fetch_reads_the_apk_from_an_https_url(db, apks, trusted):
    apk = fetch_apk(trusted.url("v2v3.apk"), actor="alice")
    assert apk.sha256 == hashlib.sha256(apks.v2v3.read_bytes()).hexdigest()
    assert apk.facts.signature_checksum == apks.key_a.checksum
    [event] = _events(db, "companion.apk_read")
    assert event.details["source"] == trusted.url("v2v3.apk")


@pytest.mark.parametrize("name, expected", [
    ("missing.apk", "answered HTTP 404"),
    ("notes.apk", "This file is not an APK."),
    ("to-http", "redirected to http://127.0.0.1:"),
])
def test_fetch_failures_are_explained_beside_the_download_url(db, trusted, name, expected):
    with pytest.raises(CompanionError) as error:
        fetch_apk(trusted.url(name), actor="alice")
    assert expected in error.value.errors["download_url"]
    assert _events(db, "companion.apk_read") == []


def test_fetch_refuses_a_certificate_the_system_does_not_trust(db, server):
    with pytest.raises(CompanionError) as error:
        fetch_apk(server.url("v2v3.apk"), actor="alice")
    assert "certificate is not trusted" in error.value.errors["download_url"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/v2v3.apk", "ftp://example.org/a.apk", "",
                                 "https://", "https://[::1/a.apk"])
def test_fetch_needs_an_https_url_and_sends_nothing_otherwise(db, url):
    with pytest.raises(CompanionError) as error:
        fetch_apk(url, actor="alice")
    assert "https://" in error.value.errors["download_url"]


def test_fetch_stops_at_the_size_limit(db, trusted, monkeypatch):
    monkeypatch.setattr(companion, "APK_MAX_BYTES", 1000)
    with pytest.raises(CompanionError) as error:
        fetch_apk(trusted.url("v2v3.apk"), actor="alice")
    assert "larger than" in error.value.errors["download_url"]


def test_another_apk_under_a_version_code_the_portal_serves_is_refused(db, apks, tmp_path):
    first = read_uploaded_apk(apks.v2v3.read_bytes(), actor="alice")
    portal_url = companion.portal_apk_url(first)
    assert portal_url == "https://portal.test/companion/42.apk"
    _save(first, download_url=portal_url)
    same_code = read_uploaded_apk(
        build_apk(tmp_path, "again", key=apks.key_a, version_name="4.2.0-fix").read_bytes(),
        actor="alice")
    with pytest.raises(CompanionError) as error:
        _save(same_code, download_url=portal_url)
    assert "version code 42" in error.value.errors["apk"]
    _save(same_code)  # elsewhere it may keep its version code


def test_fetch_gives_up_after_its_deadline(db, trusted, monkeypatch):
    monkeypatch.setattr(companion, "APK_FETCH_DEADLINE", -1)
    with pytest.raises(CompanionError) as error:
        fetch_apk(trusted.url("v2v3.apk"), actor="alice")
    assert "took longer than" in error.value.errors["download_url"]
