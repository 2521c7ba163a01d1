"""The Self Service Portal in headless Chromium at a phone's size: each sign-in method (Local,
Active Directory on a real slapd, Azure AD on a real OpenID provider), in English and German,
from the QR's page to the enrollment link, whose ticket the Companion API then redeems."""
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from portal import vault
from portal.accounts.users import add_local_user
from portal.database import db
from portal.directory import azure
from portal.licensing.seats import set_total
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from portal.settings.companion import seed_example_companion
from portal.settings.models import SignInSettings
from tests.support.ldap_server import STUDENTS_FILTER
from tests.support.live import live_app, serving
from tests.support.oidc_provider import USERS

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
AZURE_LOGIN = "juergen.mueller@example.org"


@dataclass(frozen=True)
class Portal:
    url: str
    qr_ids: dict  # lang -> public id


@pytest.fixture(scope="module")
def portal(tmp_path_factory, ldap_server, oidc_provider):
    """A portal with all three methods on, and one Self Service Portal QR per language."""
    app = live_app(tmp_path_factory.mktemp("ssp-portal"), "ssp",
                   AZURE_CA_FILE=oidc_provider.ca_file)
    config = ldap_server.config("ldaps", user_filter=STUDENTS_FILTER)
    azure.forget_caches()
    with app.app_context():
        seed_example_companion()
        set_total(20)
        add_local_user("lena", "lena@example.com", "lena password 1", display_name="Lena Local")
        db.session.add(SignInSettings(
            id=1, local_enabled=True, ldap_enabled=True, ldap_url=config.url,
            ldap_security="ldaps", ldap_ca_cert=config.ca_cert_pem, ldap_bind_dn=config.bind_dn,
            ldap_bind_password_enc=vault.encrypt(config.bind_password),
            ldap_base_dn=config.base_dn, ldap_user_attribute="sAMAccountName",
            ldap_user_filter=STUDENTS_FILTER, azure_enabled=True,
            azure_authority=oidc_provider.issuer, azure_client_id=oidc_provider.client_id,
            azure_client_secret_enc=vault.encrypt(oidc_provider.client_secret)))
        db.session.commit()
        qr_ids = {}
        for lang in ("en", "de-CH"):
            qr = create_qr_code(QrCodeRequest(option="ssp", lang=lang, network="mobile"),
                                created_by=None, server_url="https://portal.test")
            qr_ids[lang] = qr.public_id
    with serving(app) as url:
        app.config["PORTAL_PUBLIC_URL"] = url  # the enrollment link and Azure's redirect URI
        yield Portal(url, qr_ids)
    azure.forget_caches()


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  ignore_https_errors=True)  # the test provider's own CA
    context.set_default_timeout(8000)
    page = context.new_page()
    yield page
    context.close()


def _fits_the_phone(page):
    # After a form's navigation the new page's elements may be there before its stylesheet:
    # measured then, a button is the browser's default 21 px (seen once under load in CI).
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal scrolling: {width} px"
    for box in page.locator("button:visible, a.button:visible").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().height)"):
        assert box >= 44, f"a touch target of {box} px"


def _sign_in(page, method, lang):
    if method == "azure":
        page.click("#azure-sign-in")
        page.fill("input[name=login]", AZURE_LOGIN)
        page.fill("input[name=password]", USERS[AZURE_LOGIN]["password"])
        page.click("#sign-in")
        return
    page.check(f"input[name=method][value={method}]")
    username, password = ("alice", "Passw0rd!") if method == "ldap" else ("lena",
                                                                          "lena password 1")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]:has-text('%s')" % ("Anmelden" if lang == "de-CH"
                                                        else "Sign in"))


TEXTS = {"en": ("Set up this device", "Start", "Enroll this device"),
         "de-CH": ("Dieses Gerät einrichten", "Start", "Dieses Gerät registrieren")}
GREETING = {"local": "Lena Local", "ldap": "Alice Example", "azure": "Jürgen"}


@pytest.mark.parametrize("lang", ["en", "de-CH"])
@pytest.mark.parametrize("method", ["local", "ldap", "azure"])
def test_sign_in_start_and_enroll_on_a_phone(phone, portal, artifacts, method, lang):
    qr_id = portal.qr_ids[lang]
    heading, start, enroll = TEXTS[lang]
    phone.goto(f"{portal.url}/ssp/?qr_id={qr_id}")
    assert phone.locator("h1").inner_text() == heading
    _fits_the_phone(phone)
    if method == "local" and lang == "en":
        phone.screenshot(path=artifacts / "ssp-sign-in-en.png", full_page=True)
    _sign_in(phone, method, lang)
    phone.wait_for_selector("#ssp-start")
    assert GREETING[method] in phone.locator("h1").inner_text()
    _fits_the_phone(phone)
    phone.screenshot(path=artifacts / f"ssp-start-{method}-{lang}.png", full_page=True)
    phone.click(f"button#start:has-text('{start}')")
    link = phone.locator("#enrollment-link")
    assert link.inner_text() == enroll
    _fits_the_phone(phone)
    href = link.get_attribute("href")
    assert href.startswith(f"companion://enroll?server_url=") and f"qr_id={qr_id}" in href
    query = parse_qs(urlsplit(href).query)
    serial = f"R58{method.upper()}{lang[:2].upper()}1"
    device = {"serial_number": serial, "manufacturer": "samsung", "model": "SM-T220",
              "android_api_level": 34}
    answer = requests.post(f"{portal.url}/api/v1/enrollments", timeout=10, json={
        "qr_id": qr_id, "ticket": query["ticket"][0], "device": device})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    done = requests.post(f"{portal.url}/api/v1/devices/{body['device_id']}/"
                         "provisioning-complete", json={"result": "success"}, timeout=10,
                         headers={"Authorization": f"Bearer {body['device_token']}"})
    assert done.status_code == 200 and done.json()["state"] == "enrolled"
    again = requests.post(f"{portal.url}/api/v1/enrollments", timeout=10, json={
        "qr_id": qr_id, "ticket": query["ticket"][0],
        "device": dict(device, serial_number=serial + "X")})
    assert again.status_code in (401, 409)  # the ticket was used


def test_the_language_switch_and_a_revoked_qr_on_a_phone(phone, portal, artifacts):
    phone.goto(f"{portal.url}/ssp/?qr_id={portal.qr_ids['en']}")
    phone.click("nav.languages a[lang=de]")
    assert phone.locator("h1").inner_text() == "Dieses Gerät einrichten"
    phone.click("nav.languages a[lang=it]")
    assert phone.locator("h1").inner_text() == "Configura questo dispositivo"
    phone.screenshot(path=artifacts / "ssp-sign-in-it.png", full_page=True)
    phone.goto(f"{portal.url}/ssp/?qr_id=unknown-qr")
    assert phone.locator("h1").inner_text() == "Codice QR non trovato"
    _fits_the_phone(phone)
