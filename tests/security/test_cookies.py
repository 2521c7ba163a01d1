"""Session cookies: HttpOnly and SameSite always, Secure whenever the portal is served over https.

config.py decides SESSION_COOKIE_SECURE when the Config class is defined, from the environment,
so these tests define it afresh from config.py with the environment a deployment would have.
"""
import runpy
from pathlib import Path

import pytest

from portal import create_app
from tests.conftest import ADMIN_PASSWORD, csrf_token_from
from tests.security.conftest import END_USER_PASSWORD

CONFIG_FILE = Path(__file__).resolve().parents[2] / "config.py"


def deployed_config(monkeypatch, public_url: str, **overrides):
    """config.Config as a fresh import would define it with PORTAL_PUBLIC_URL=public_url."""
    monkeypatch.setenv("PORTAL_PUBLIC_URL", public_url)
    for name in ("SESSION_COOKIE_SECURE", "REDIS_URL", "PORTAL_ENV"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(CONFIG_FILE))["Config"]
    return type("DeployedConfig", (config,), {"PORTAL_ENV": "production", **overrides})


def _session_cookies(response) -> list[set[str]]:
    """The attributes of each Set-Cookie for the session, e.g. {"httponly", "samesite=lax"}."""
    return [{part.strip().lower() for part in header.split(";")[1:]}
            for header in response.headers.getlist("Set-Cookie")
            if header.startswith("session=")]


@pytest.fixture
def deployed(monkeypatch, database_uri, tmp_path, db):
    """An app built like production for a public URL; its writes join the test's rollback."""
    def build(public_url: str):
        config = deployed_config(monkeypatch, public_url,
                                 SQLALCHEMY_DATABASE_URI=database_uri,
                                 INSTANCE_PATH=str(tmp_path),
                                 SECRET_KEY="deployed-secret-key-for-the-cookie-tests-0123")
        return create_app(config)
    return build


def _sign_in_admin(app, make_admin, base_url):
    admin = make_admin()
    client = app.test_client()
    page = client.get("/admin/login", base_url=base_url)
    response = client.post("/admin/login", base_url=base_url, data={
        "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        "username": admin.username, "password": ADMIN_PASSWORD},
        # Over https, Flask-WTF also wants a same-origin Referer, as a browser sends.
        headers={"Referer": f"{base_url}/admin/login"})
    assert response.status_code == 303, response.get_data(as_text=True)
    return _session_cookies(page) + _session_cookies(response)


def _sign_in_end_user(app, make_qr_code, make_user, base_url):
    qr, user = make_qr_code("ssp", licenses=5), make_user(password=END_USER_PASSWORD)
    client = app.test_client()
    page = client.get(f"/ssp/?qr_id={qr.public_id}", base_url=base_url)
    response = client.post(f"/ssp/sign-in?qr_id={qr.public_id}", base_url=base_url, data={
        "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        "username": user.username, "password": END_USER_PASSWORD},
        headers={"Referer": f"{base_url}/ssp/?qr_id={qr.public_id}"})
    assert response.status_code == 303, response.get_data(as_text=True)
    return _session_cookies(page) + _session_cookies(response)


@pytest.mark.parametrize("public_url", ["https://portal.example.org",
                                        "HTTPS://Portal.Example.org/"])
def test_config_marks_cookies_secure_behind_https(monkeypatch, public_url):
    config = deployed_config(monkeypatch, public_url)

    assert config.SESSION_COOKIE_SECURE is True
    assert config.REMEMBER_COOKIE_SECURE is True
    assert config.SESSION_COOKIE_HTTPONLY and config.REMEMBER_COOKIE_HTTPONLY
    assert config.SESSION_COOKIE_SAMESITE in ("Lax", "Strict")
    assert config.REMEMBER_COOKIE_SAMESITE in ("Lax", "Strict")


@pytest.mark.parametrize("sign_in", ["admin", "end user"])
def test_session_cookie_is_secure_httponly_samesite_behind_https(deployed, make_admin,
                                                                  make_qr_code, make_user,
                                                                  sign_in):
    app = deployed("https://portal.example.org")
    base_url = "https://portal.example.org"

    cookies = _sign_in_admin(app, make_admin, base_url) if sign_in == "admin" else \
        _sign_in_end_user(app, make_qr_code, make_user, base_url)

    assert cookies, "no session cookie was set"
    for attributes in cookies:
        assert "secure" in attributes and "httponly" in attributes
        assert attributes & {"samesite=lax", "samesite=strict"}


@pytest.mark.parametrize("sign_in", ["admin", "end user"])
def test_session_cookie_is_not_secure_in_plain_http_development(deployed, make_admin,
                                                                 make_qr_code, make_user,
                                                                 sign_in):
    app = deployed("http://127.0.0.1:5000")
    base_url = "http://127.0.0.1:5000"

    cookies = _sign_in_admin(app, make_admin, base_url) if sign_in == "admin" else \
        _sign_in_end_user(app, make_qr_code, make_user, base_url)

    assert cookies
    for attributes in cookies:
        assert "secure" not in attributes
        assert "httponly" in attributes and "samesite=lax" in attributes


def test_sign_in_sets_no_remember_me_cookie(deployed, make_admin):
    """A remember-me cookie would outlive signing out; the console does not issue one."""
    app = deployed("https://portal.example.org")
    admin = make_admin()
    client = app.test_client()
    page = client.get("/admin/login", base_url="https://portal.example.org")
    response = client.post("/admin/login", base_url="https://portal.example.org", data={
        "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        "username": admin.username, "password": ADMIN_PASSWORD, "remember": "y"},
        headers={"Referer": "https://portal.example.org/admin/login"})

    assert response.status_code == 303
    assert not [c for c in response.headers.getlist("Set-Cookie")
                if c.startswith(app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))]
