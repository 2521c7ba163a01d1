"""Helpers for the Self Service Portal pages, driven like the Companion's web view."""
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import csrf_token_from


@dataclass
class Page:
    status: int
    html: str
    location: str | None = None


def get(client, url, **kwargs) -> Page:
    response = client.get(url, **kwargs)
    return Page(response.status_code, response.get_data(as_text=True),
                response.headers.get("Location"))


def post_sign_in(client, qr_id, username, password, method=None, **kwargs) -> Page:
    page = get(client, f"/ssp/?qr_id={qr_id}")
    data = {"csrf_token": csrf_token_from(page.html), "username": username,
            "password": password}
    if method:
        data["method"] = method
    response = client.post(f"/ssp/sign-in?qr_id={qr_id}", data=data, **kwargs)
    return Page(response.status_code, response.get_data(as_text=True),
                response.headers.get("Location"))


def press_start(client, qr_id) -> str:
    """Press Start on the signed-in page; returns the enrollment link's ticket."""
    page = get(client, f"/ssp/start?qr_id={qr_id}")
    assert 'id="ssp-start"' in page.html, page.html
    response = client.post(f"/ssp/start?qr_id={qr_id}",
                           data={"csrf_token": csrf_token_from(page.html)})
    html = response.get_data(as_text=True)
    match = re.search(r'<a id="enrollment-link"[^>]*href="([^"]+)"', html)
    assert match, html
    link = match.group(1).replace("&amp;", "&")
    return parse_qs(urlsplit(link).query)["ticket"][0]


@pytest.fixture
def ssp_qr(make_qr_code):
    return make_qr_code("ssp", licenses=10)


@pytest.fixture
def methods(db):
    """Switch the sign-in methods: methods(local=False, ldap=config, azure=config)."""
    from portal.settings.models import SignInSettings

    def switch(local=True, ldap_values=None, azure_values=None):
        row = db.session.get(SignInSettings, 1) or SignInSettings(id=1)
        row.local_enabled = local
        for name, value in (ldap_values or {}).items():
            setattr(row, name, value)
        for name, value in (azure_values or {}).items():
            setattr(row, name, value)
        db.session.add(row)
        db.session.commit()
        return row
    return switch


def ldap_values(config) -> dict:
    """SignInSettings columns for an LdapConfig, the password encrypted as the page stores it."""
    from portal import vault
    return {"ldap_enabled": True, "ldap_url": config.url, "ldap_security": config.security,
            "ldap_ca_cert": config.ca_cert_pem, "ldap_bind_dn": config.bind_dn,
            "ldap_bind_password_enc": vault.encrypt(config.bind_password)
            if config.bind_password else None,
            "ldap_base_dn": config.base_dn, "ldap_user_attribute": config.user_attribute,
            "ldap_user_filter": config.user_filter, "ldap_timeout": 3}


def save_directory_without_sign_in(server) -> None:
    """Save the LDAP settings of a test slapd (LDAPS) with end-user sign-in off: what the
    wizard's and bulk's directory look-ups need. Commits."""
    from portal.database import db
    from portal.settings.models import SignInSettings
    row = SignInSettings(id=1, **ldap_values(server.config("ldaps")))
    row.ldap_enabled = False
    db.session.add(row)
    db.session.commit()


def azure_values(provider) -> dict:
    from portal import vault
    return {"azure_enabled": True, "azure_authority": provider.issuer,
            "azure_client_id": provider.client_id,
            "azure_client_secret_enc": vault.encrypt(provider.client_secret)}
