"""Admin → Companion from its APK: Read APK, Fetch from the download URL, Save checks the values
against the APK, and the portal serves the saved APK at /companion/<version code>.apk."""
import hashlib
import html as html_text
import io
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.settings import companion
from portal.settings.models import CompanionSettings
from tests.conftest import csrf_token
from tests.support.apks import COMPONENT, apks, build_apk, https_server  # noqa: F401

PAGE = "/admin/settings/companion"
HX = {"HX-Request": "true"}
URL = "https://mdm.acme.ch/companion.apk"


def _post(client, data, *, htmx=False, file=None):
    token = csrf_token(client, PAGE)
    data = dict(data)
    if file is not None:
        data["apk"] = (io.BytesIO(file.read_bytes()), file.name)
    headers = {**HX, "X-CSRFToken": token} if htmx else {}
    if not htmx:
        data["csrf_token"] = token
    return client.post(PAGE, data=data, headers=headers, content_type="multipart/form-data")


def _html(response) -> str:
    return response.get_data(as_text=True)


def _field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<span class="error" id="{field_id}-error">(.*?)</span>', html, re.S)
    assert match, f"no error next to {field_id}"
    return html_text.unescape(match.group(1))


def _value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="{name}"',
                      html)
    assert match, f"no value for {name}"
    return match.group(1) or match.group(2) or ""


def _fields(**overrides):
    values = {"component_name": "", "download_url": URL, "signature_checksum": "",
              "leave_system_apps_enabled": "y", "enrollment_link_scheme": "companion"}
    return {**values, **overrides}


def _row(db):
    db.session.expire_all()
    return db.session.get(CompanionSettings, 1)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_read_apk_fills_component_and_checksum_shows_the_facts_and_saves_nothing(
        admin_client, db, apks, htmx):
    response = _post(admin_client, _fields(action="read"), htmx=htmx, file=apks.v2v3)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<form id="companion-form"') is htmx
    assert _value(html, "component_name") == COMPONENT
    assert _value(html, "signature_checksum") == apks.key_a.checksum
    assert _value(html, "download_url") == URL  # what was typed stays
    assert _value(html, "apk_sha256") == hashlib.sha256(apks.v2v3.read_bytes()).hexdigest()
    assert "The APK is read" in html
    assert "<dd>com.example.companion</dd>" in html and "4.2.0 (version code 42)" in html
    assert "APK signature scheme v2, v3" in html
    assert _row(db) is None


def test_read_then_save_records_the_apk_with_the_settings(admin_client, db, apks):
    html = _html(_post(admin_client, _fields(action="read"), file=apks.v2v3))
    values = _fields(component_name=_value(html, "component_name"),
                     signature_checksum=_value(html, "signature_checksum"),
                     apk_sha256=_value(html, "apk_sha256"), action="save")

    response = _post(admin_client, values)

    assert response.status_code == 303
    row = _row(db)
    assert (row.component_name, row.signature_checksum, row.apk_version_code,
            row.apk_version_name, row.apk_sha256) == (
        COMPONENT, apks.key_a.checksum, 42, "4.2.0", values["apk_sha256"])
    page = _html(admin_client.get(PAGE))
    assert _value(page, "apk_sha256") == values["apk_sha256"]
    assert "checked against this APK when you save" in page


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_a_hand_typed_checksum_that_does_not_match_the_apk_is_refused_with_both_values(
        admin_client, db, apks, htmx):
    html = _html(_post(admin_client, _fields(action="read"), file=apks.v2v3))
    typed = apks.key_b.checksum
    values = _fields(component_name=COMPONENT, signature_checksum=typed,
                     apk_sha256=_value(html, "apk_sha256"), action="save")

    response = _post(admin_client, values, htmx=htmx)

    assert response.status_code == 422
    html = _html(response)
    error = _field_error(html, "signature_checksum")
    assert typed in error and apks.key_a.checksum in error
    assert _value(html, "signature_checksum") == typed  # nothing typed is lost
    assert _row(db) is None


def test_a_file_that_is_not_an_apk_gets_the_message_beside_the_file_and_keeps_the_typed_values(
        admin_client, db, apks):
    response = _post(admin_client, _fields(action="read", component_name="a.b/.C"),
                     file=apks.not_apk)

    assert response.status_code == 422
    html = _html(response)
    assert _field_error(html, "apk") == "This file is not an APK."
    assert _value(html, "component_name") == "a.b/.C"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "companion.apk_read")) == 0


def test_read_apk_without_a_file_asks_for_one(admin_client, db):
    response = _post(admin_client, _fields(action="read"))
    assert response.status_code == 422
    assert "Choose the Companion's APK file" in _field_error(_html(response), "apk")


def test_save_with_a_file_chosen_reads_it_for_review_and_saves_nothing(admin_client, db, apks):
    response = _post(admin_client, _fields(action="save"), file=apks.v2v3)
    assert response.status_code == 200
    assert _value(_html(response), "signature_checksum") == apks.key_a.checksum
    assert _row(db) is None


def test_an_apk_larger_than_the_consoles_2_mib_is_read(admin_client, db, apks, tmp_path):
    big = build_apk(tmp_path, "big", key=apks.key_a, padding=3 * 1024 * 1024)
    assert big.stat().st_size > 3 * 1024 * 1024

    response = _post(admin_client, _fields(action="read"), file=big)

    assert response.status_code == 200
    assert _value(_html(response), "signature_checksum") == apks.key_a.checksum


@pytest.mark.parametrize("htmx, status", [(False, 413), (True, 422)], ids=["plain", "htmx"])
def test_an_apk_over_the_limit_gets_the_message_beside_the_file(
        admin_client, db, apks, tmp_path, monkeypatch, htmx, status):
    big = build_apk(tmp_path, "big", key=apks.key_a, padding=2 * 1024 * 1024)
    monkeypatch.setattr(companion, "APK_MAX_BYTES", 1000)

    response = _post(admin_client, _fields(action="read"), htmx=htmx, file=big)

    assert response.status_code == status
    assert _field_error(_html(response), "apk").startswith("The file is larger than")


def test_an_edited_apk_reference_is_a_message_not_a_500(admin_client, db):
    values = _fields(component_name=COMPONENT, apk_sha256="../../secret_key", action="save",
                     signature_checksum="I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg")
    response = _post(admin_client, values)
    assert response.status_code == 422
    assert "read or fetch it again" in _html(response)
    assert _row(db) is None


def test_post_without_csrf_token_is_refused(admin_client, db, apks):
    response = admin_client.post(PAGE, data={**_fields(action="read"),
                                             "apk": (io.BytesIO(apks.v2v3.read_bytes()), "a.apk")},
                                 content_type="multipart/form-data")
    assert response.status_code == 400
    assert _row(db) is None


@pytest.fixture
def server(app, apks):
    with https_server(apks.directory) as running:
        app.config["TRUSTED_CA_FILE"] = running.ca_file
        yield running


def test_fetch_from_the_download_url_fills_the_form(admin_client, db, apks, server):
    response = _post(admin_client, _fields(action="fetch", download_url=server.url("rotated.apk")),
                     htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert _value(html, "signature_checksum") == apks.key_a.checksum  # the lineage's oldest
    assert "4.3.0 (version code 43)" in html
    assert "v1, v2, v3" in html


def test_a_fetch_that_fails_says_why_beside_the_download_url(admin_client, db, server):
    response = _post(admin_client, _fields(action="fetch", download_url=server.url("gone.apk")))
    assert response.status_code == 422
    assert "answered HTTP 404" in _field_error(_html(response), "download_url")


def test_forget_the_apk_drops_it_from_the_form(admin_client, db, apks):
    html = _html(_post(admin_client, _fields(action="read"), file=apks.v2v3))
    response = _post(admin_client, _fields(action="forget", apk_sha256=_value(html, "apk_sha256")))
    assert response.status_code == 200
    assert _value(_html(response), "apk_sha256") == ""
    assert "companion-apk-facts" not in _html(response)


def _save_served(client, apks):
    html = _html(_post(client, _fields(action="read"), file=apks.v2v3))
    sha256 = _value(html, "apk_sha256")
    html = _html(_post(client, _fields(action="serve", apk_sha256=sha256)))
    assert _value(html, "download_url") == "https://portal.test/companion/42.apk"
    response = _post(client, _fields(action="save", apk_sha256=sha256, component_name=COMPONENT,
                                     signature_checksum=apks.key_a.checksum,
                                     download_url=_value(html, "download_url")))
    assert response.status_code == 303


def test_the_portal_serves_the_saved_apk_with_etag_range_and_a_long_cache(
        admin_client, client, db, apks):
    _save_served(admin_client, apks)
    data = apks.v2v3.read_bytes()
    events = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))

    response = client.get("/companion/42.apk")

    assert response.status_code == 200
    assert response.get_data() == data
    assert response.mimetype == "application/vnd.android.package-archive"
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert "max-age=31536000" in response.headers["Cache-Control"]
    assert response.headers["Accept-Ranges"] == "bytes"
    part = client.get("/companion/42.apk", headers={"Range": "bytes=0-3"})
    assert (part.status_code, part.get_data()) == (206, data[:4])
    again = client.get("/companion/42.apk", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events


@pytest.mark.parametrize("path", ["/companion/41.apk", "/companion/x.apk", "/companion/0.apk",
                                  "/companion/-1.apk", "/companion/2147483648.apk",
                                  "/companion/99999999999999999999999.apk", "/companion/42.apk"])
def test_no_saved_apk_or_another_version_is_404(client, db, path):
    assert client.get(path).status_code == 404


def test_an_older_served_version_stays_served_for_the_qr_codes_made_with_it(
        admin_client, client, db, apks, tmp_path):
    _save_served(admin_client, apks)
    newer = build_apk(tmp_path, "newer", key=apks.key_a, version_code=43, version_name="4.3.0")
    html = _html(_post(admin_client, _fields(action="read"), file=newer))
    sha256 = _value(html, "apk_sha256")
    response = _post(admin_client, _fields(
        action="save", apk_sha256=sha256, component_name=COMPONENT,
        signature_checksum=apks.key_a.checksum,
        download_url="https://portal.test/companion/43.apk"))
    assert response.status_code == 303

    assert client.get("/companion/43.apk").get_data() == newer.read_bytes()
    assert client.get("/companion/42.apk").get_data() == apks.v2v3.read_bytes()


def test_an_apk_saved_with_another_download_url_is_not_served(admin_client, client, db, apks):
    html = _html(_post(admin_client, _fields(action="read"), file=apks.v2v3))
    response = _post(admin_client, _fields(action="save", apk_sha256=_value(html, "apk_sha256"),
                                           component_name=COMPONENT,
                                           signature_checksum=apks.key_a.checksum))
    assert response.status_code == 303
    assert client.get("/companion/42.apk").status_code == 404
