"""Error answers per audience: the API and /healthz speak the contract's JSON, /ssp pages the
phone's page, everything else the console's HTML; each blueprint adds its own audience."""
import ast
from pathlib import Path

import pytest
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import NotFound

import portal.web


def _failing(app, monkeypatch, endpoint, error):
    def fail(*args, **kwargs):
        raise error
    monkeypatch.setitem(app.view_functions, endpoint, fail)


def _contract_error(response, status, code):
    assert response.status_code == status and response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == code


@pytest.mark.parametrize("endpoint, path", [("api.openapi", "/api/v1/openapi.json"),
                                            ("health.healthz", "/healthz")])
def test_a_crash_on_the_api_or_the_health_check_is_contract_json(app, client, monkeypatch,
                                                                endpoint, path):
    _failing(app, monkeypatch, endpoint, RuntimeError("boom"))
    _contract_error(client.get(path), 500, "internal_error")


def test_a_csrf_failure_on_an_api_path_is_contract_json(app, client, monkeypatch):
    _failing(app, monkeypatch, "api.openapi", CSRFError())
    _contract_error(client.get("/api/v1/openapi.json"), 400, "invalid_request")


def test_an_unknown_api_url_is_contract_json_for_any_method(client):
    _contract_error(client.post("/api/v1/no-such-thing", data="x"), 404, "not_found")


def test_self_service_errors_are_the_phones_page_and_a_crash_the_html_500(app, client,
                                                                           monkeypatch):
    missing = client.get("/ssp/?qr_id=no-such-code")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "QR code not found" in missing.get_data(as_text=True)

    _failing(app, monkeypatch, "selfservice.index", CSRFError())
    refused = client.get("/ssp/?qr_id=x")
    assert refused.status_code == 400 and "Please try again" in refused.get_data(as_text=True)

    _failing(app, monkeypatch, "selfservice.index", RuntimeError("boom"))
    crashed = client.get("/ssp/?qr_id=x")
    assert crashed.status_code == 500 and crashed.mimetype == "text/html"
    assert "Please try again" not in crashed.get_data(as_text=True)


def test_the_console_gets_its_html_pages(app, client, monkeypatch):
    _failing(app, monkeypatch, "admin.login", NotFound())
    assert "<h1>Not found</h1>" in client.get("/admin/login").get_data(as_text=True)
    _failing(app, monkeypatch, "admin.login", CSRFError())
    response = client.get("/admin/login")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_portal_web_imports_no_blueprint():
    blueprints = ("portal.admin", "portal.api", "portal.selfservice")
    for module in Path(portal.web.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            assert not [n for n in names if n.startswith(blueprints)], module.name
