"""The wizard's provisioning options through the console: time zone, enterprise Wi-Fi (EAP) and
proxy. Every payload the wizard can make (option × network × security × EAP method × proxy ×
time zone) decodes from its PNG with zxing-cpp and passes companion-sim's Android checks; the
combinations Android refuses get their message beside the field and save nothing."""
import io
import itertools
import json
import re

import pytest
import sqlalchemy as sa

from portal import vault
from portal.android.qr import render_png
from portal.audit.models import AuditEvent
from portal.enrollment.models import QrCode
from portal.licensing.seats import set_total
from portal.settings.companion import seed_example_companion
from portal.simulator.checks import check_payload
from tests.conftest import csrf_token_from
from tests.support import eap_certs
from tests.support.qr import decode_qr

NEW = "/admin/devices/pending/new"
VERSION = "/admin/devices/pending/new/qr-version"
P = "android.app.extra.PROVISIONING_"

NETWORKS = {
    "mobile": {"network": "mobile"},
    "wpa": {"wifi_security": "WPA", "wifi_password": "correct-horse"},
    "wep": {"wifi_security": "WEP", "wifi_password": "0123456789"},
    "open": {"wifi_security": "NONE"},
    "peap": {"wifi_security": "EAP", "wifi_eap_method": "PEAP", "wifi_phase2": "MSCHAPV2",
             "wifi_identity": "alice@corp.example", "wifi_password": "eap-pass",
             "wifi_anonymous_identity": "anon@corp.example", "wifi_domain": "radius.corp.example",
             "wifi_ca_certificate": "ca"},
    "ttls": {"wifi_security": "EAP", "wifi_eap_method": "TTLS", "wifi_phase2": "PAP",
             "wifi_identity": "alice", "wifi_password": "eap-pass"},
    "tls": {"wifi_security": "EAP", "wifi_eap_method": "TLS", "wifi_identity": "dev1",
            "wifi_user_certificate": "client"},
    "pwd": {"wifi_security": "EAP", "wifi_eap_method": "PWD", "wifi_identity": "alice",
            "wifi_password": "eap-pass"},
}
PROXIES = {
    "none": {"proxy": "none"},
    "manual": {"proxy": "manual", "proxy_host": "proxy.corp.example", "proxy_port": "3128",
               "proxy_bypass": "localhost,*.corp.example"},
    "pac": {"proxy": "pac", "pac_url": "https://wpad.corp.example/proxy.pac"},
}
TIME_ZONES = {"no-tz": "", "zurich": "Europe/Zurich"}
MATRIX = [(option, network, proxy, tz) for option, network, proxy, tz in itertools.product(
    ("ssp", "auto"), NETWORKS, PROXIES, TIME_ZONES) if not (network == "mobile" and proxy != "none")]


@pytest.fixture
def wizard(admin_client, make_user, db):
    seed_example_companion()
    set_total(500)
    make_user("alice", email="alice@example.com")
    admin_client.token = csrf_token_from(admin_client.get(NEW).get_data(as_text=True))
    return admin_client


def _files(values: dict) -> dict:
    uploads = {"ca": (eap_certs.ca_pem(), "corp-ca.pem"),
               "client": (eap_certs.client_p12(b"p12-pass"), "dev1.p12")}
    for name in ("wifi_ca_certificate", "wifi_user_certificate"):
        if name in values:
            data, filename = uploads[values[name]]
            values[name] = (io.BytesIO(data), filename)
            if name == "wifi_user_certificate":
                values["wifi_user_certificate_password"] = "p12-pass"
    return values


def form(client, option="ssp", network="wpa", proxy="none", tz="", **overrides):
    values = {"csrf_token": client.token, "option": option, "lang": "en", "network": "wifi",
              "wifi_ssid": "Corp-8021X", "time_zone": TIME_ZONES.get(tz, tz)}
    if option == "auto":
        values.update(user_type="local", username="alice", usage_count="1")
    values.update(NETWORKS[network], **PROXIES[proxy])
    values = _files(values)
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def post(client, values, htmx=False):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/admin/devices/pending", data=values, headers=headers,
                       content_type="multipart/form-data")


def qr_count(db):
    return db.session.scalar(sa.select(sa.func.count()).select_from(QrCode))


def newest(db) -> QrCode:
    return db.session.scalar(sa.select(QrCode).order_by(QrCode.id.desc()).limit(1))


@pytest.mark.parametrize("option,network,proxy,tz", MATRIX,
                         ids=["-".join(case) for case in MATRIX])
def test_every_wizard_payload_decodes_from_its_png_and_passes_androids_checks(
        wizard, db, option, network, proxy, tz):
    response = post(wizard, form(wizard, option, network, proxy, tz))
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    qr = newest(db)
    text = decode_qr(render_png(qr.payload_text()))
    payload, problems = check_payload(text, api_level=34)
    assert problems == [] and text == qr.payload_text()
    assert payload.get(P + "TIME_ZONE") == (TIME_ZONES[tz] or None)
    if network == "mobile":
        assert payload[P + "USE_MOBILE_DATA"] is True
        return
    assert payload[P + "WIFI_SECURITY_TYPE"] == NETWORKS[network]["wifi_security"]
    assert payload.get(P + "WIFI_EAP_METHOD") == NETWORKS[network].get("wifi_eap_method")
    assert payload.get(P + "WIFI_PROXY_PORT") == (3128 if proxy == "manual" else None)
    assert payload.get(P + "WIFI_PAC_URL") == PROXIES[proxy].get("pac_url")


def test_an_eap_payload_is_refused_by_a_device_older_than_android_10(wizard, db):
    assert post(wizard, form(wizard, network="peap")).status_code == 303
    _, problems = check_payload(newest(db).payload_text(), api_level=28)
    assert any("Android 10" in problem for problem in problems)


@pytest.mark.parametrize("network,overrides,field,fragment", [
    ("peap", {"wifi_identity": ""}, "wifi_identity", "Identity is required"),
    ("wpa", {"proxy": "manual", "proxy_host": "proxy.corp", "proxy_port": "0"}, "proxy_port",
     "1 to 65,535, not 0"),
    ("wpa", {"proxy": "manual", "proxy_host": "proxy.corp", "proxy_port": "70000"},
     "proxy_port", "1 to 65,535, not 70000"),
    ("wpa", {"time_zone": "Europe/Zurch"}, "time_zone", "not an IANA time zone"),
    ("wpa", {"wifi_password": "7-chars"}, "wifi_password", "8–63 characters long, not 7"),
    ("tls", {"wifi_user_certificate": None}, "wifi_user_certificate", "TLS needs a client"),
    ("tls", {"wifi_user_certificate_password": "wrong"}, "wifi_user_certificate",
     "opens with this password"),
    ("wpa", {"proxy": "manual", "proxy_host": ""}, "proxy_host", "Enter the proxy host"),
    ("wpa", {"proxy": "pac", "pac_url": "ftp://wpad/p.pac"}, "pac_url", "http:// or https://"),
    ("ttls", {"wifi_phase2": "NONE"}, "wifi_phase2", "must be PAP, MSCHAP, MSCHAPV2, GTC"),
])
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_refused_combinations_show_the_message_beside_the_field_and_save_nothing(
        wizard, db, network, overrides, field, fragment, htmx):
    before = qr_count(db)
    values = form(wizard, "auto", network, **overrides)
    response = post(wizard, values, htmx=htmx)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    slot = html.split(f'id="{field}-error"', 1)[1].split("</span>", 1)[0]
    assert fragment in slot, slot
    assert qr_count(db) == before
    assert "eap-pass" not in html and "p12-pass" not in html  # no secret sent back


def test_eap_secrets_are_stored_encrypted_and_never_audited(wizard, db):
    assert post(wizard, form(wizard, "auto", "tls", "manual", "zurich")).status_code == 303
    qr = newest(db)
    payload = json.loads(qr.payload_text())
    client_value = payload[P + "WIFI_USER_CERTIFICATE"]
    assert vault.decrypt(qr.wifi_user_certificate_enc) == client_value
    assert client_value not in qr.wifi_user_certificate_enc
    assert (qr.wifi_eap_method, qr.wifi_identity, qr.time_zone, qr.proxy_host, qr.proxy_port) == (
        "TLS", "dev1", "Europe/Zurich", "proxy.corp.example", 3128)
    assert post(wizard, form(wizard, "ssp", "peap")).status_code == 303
    peap = newest(db)
    assert vault.decrypt(peap.wifi_password_enc) == "eap-pass"
    assert peap.wifi_ca_certificate == json.loads(peap.payload_text())[P + "WIFI_CA_CERTIFICATE"]
    details = json.dumps([event.details for event in db.session.scalars(sa.select(AuditEvent))])
    assert "eap-pass" not in details and client_value[:40] not in details
    review = wizard.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert client_value[:40] not in review and "eap-pass" not in review


def test_the_review_page_says_which_field_makes_a_dense_code_dense(wizard, db):
    assert post(wizard, form(wizard, "auto", "tls")).status_code == 303
    qr = newest(db)
    assert qr.qr_version > 25
    html = wizard.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert "hard to scan" in html and '<span id="qr-densest">the client certificate</span>' in html


def test_the_review_page_lists_the_options_it_was_made_with(wizard, db):
    assert post(wizard, form(wizard, "auto", "peap", "manual", "Europe/Zurich")).status_code == 303
    html = wizard.get(f"/admin/qr-codes/{newest(db).public_id}").get_data(as_text=True)

    eap = re.search(r'<dd id="qr-eap">(.*?)</dd>', html).group(1)
    assert "PEAP / MSCHAPV2" in eap and "alice@corp.example" in eap and "CA certificate" in eap
    assert "eap-pass" not in html
    assert re.search(r'<dd id="qr-proxy">proxy.corp.example:3128 \(not for '
                     r'localhost,\*.corp.example\)</dd>', html)
    assert '<dd id="qr-time-zone">Europe/Zurich</dd>' in html
    plain = post(wizard, form(wizard, "auto", "wpa")) and newest(db)
    html = wizard.get(f"/admin/qr-codes/{plain.public_id}").get_data(as_text=True)
    assert 'id="qr-eap"' not in html and 'id="qr-proxy"' not in html


def test_the_wizard_shows_each_options_android_version(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    assert "Enterprise Wi-Fi (EAP) <span class=\"android-version\">Android 10+</span>" in html
    assert 'Wi-Fi proxy <span class="android-version">Android 7.0+</span>' in html
    assert "Android 7.0+. Optional: an IANA time zone" in html
    assert '<option value="Europe/Zurich">' in html and 'id="qr-version"' in html


def _version(client, **args) -> str:
    response = client.get(VERSION, query_string=args)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_live_qr_version_is_the_saved_codes_version_and_writes_nothing(wizard, db):
    typed = {"option": "auto", "user_type": "local", "username": "alice", "usage_count": "1",
             "lang": "en", "network": "wifi", "wifi_ssid": "Corp-8021X", "wifi_security": "WPA",
             "time_zone": "Europe/Zurich", "proxy": "pac",
             "pac_url": "https://wpad.corp.example/proxy.pac"}
    before = (qr_count(db), db.session.scalar(sa.select(sa.func.count(AuditEvent.id))))
    html = _version(wizard, **typed, wifi_password_bytes=13)
    assert (qr_count(db), db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))) == before
    assert html.startswith('<p id="qr-version"')
    values = dict(typed, csrf_token=wizard.token, wifi_password="correct-horse")
    assert post(wizard, values).status_code == 303
    saved = newest(db)
    assert f'<strong id="qr-version-number">{saved.qr_version}</strong>' in html
    assert f"({len(saved.payload_text().encode()):,} bytes)" in html


def test_the_live_qr_version_never_reads_a_secret_from_the_url(wizard):
    short = _version(wizard, network="wifi", wifi_ssid="C", wifi_security="WPA",
                     wifi_password="x" * 2000)
    assert short == _version(wizard, network="wifi", wifi_ssid="C", wifi_security="WPA")
    huge = _version(wizard, network="wifi", wifi_ssid="C", wifi_security="EAP",
                    wifi_eap_method="TLS", wifi_identity="d", wifi_user_certificate_bytes=3000)
    assert "Too large for a QR code" in huge and "Client certificate" in huge
    assert "About" not in short


def test_the_live_qr_version_names_the_densest_field_above_version_25(wizard):
    html = _version(wizard, network="wifi", wifi_ssid="C", wifi_security="EAP",
                    wifi_eap_method="TLS", wifi_identity="d", wifi_user_certificate_bytes=1100)
    assert "About QR version" in html and "hard to scan" in html
    assert '<span id="qr-version-densest">Client certificate</span>' in html


@pytest.mark.parametrize("args", [
    {"option": "auto", "username": "ali\x00ce", "usage_count": "x"},
    {"proxy_port": "\x00", "time_zone": "Europe/\x00", "wifi_password_bytes": "-5"},
    {"wifi_user_certificate_bytes": "9" * 50, "wifi_security": "EAP", "network": "wifi"},
    {"option": "\u2603", "network": "satellite", "lang": "x" * 10_000},
])
def test_an_edited_live_version_url_answers_a_fragment_never_an_error(wizard, args):
    assert _version(wizard, **args).startswith('<p id="qr-version"')
