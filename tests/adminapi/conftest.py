"""Admin API fixtures: tokens of each scope (made by the domain function, as Admin → API
tokens makes them) and a client that sends one."""
import pytest

from portal.accounts.api_tokens import create_token

BASE = "/api/admin/v1"


def bearer(text: str) -> dict:
    return {"Authorization": f"Bearer {text}"}


def token_factory():
    """make_token without the `db` fixture: for a live server's committed database too."""
    counter = iter(range(1, 10**6))

    def make(scope="provision", name=None, days=90):
        return create_token(name or f"script {scope} {next(counter)}", scope,
                            created_by="setup", days=days).text
    return make


@pytest.fixture
def make_token(db):
    return token_factory()


@pytest.fixture
def provision(make_token) -> dict:
    return bearer(make_token("provision", name="HR system"))


@pytest.fixture
def read(make_token) -> dict:
    return bearer(make_token("read", name="Asset inventory"))


@pytest.fixture
def seeded(db, make_qr_code, make_user):
    """A Companion and 100 licenses in place (make_qr_code seeds both), and a local user."""
    from portal.licensing.seats import set_total
    make_qr_code("ssp")
    set_total(100)
    return make_user(username="pupil1", display_name="Pupil One")


def wifi_body(**overrides) -> dict:
    body = {"option": "auto", "user": "pupil1", "usage_count": 2, "localization": "en",
            "name": "Tablet cart 1",
            "network": {"type": "wifi", "ssid": "School-WLAN", "security": "WPA",
                        "password": "correct-horse"}}
    body.update(overrides)
    return body
