"""The application factory, its configuration and GET /healthz."""
import pytest
import sqlalchemy as sa

from config import TestConfig
from portal import create_app
from portal.setup import ConfigurationError


def test_blueprints_are_split_by_audience_at_their_prefixes(app):
    prefixes = {rule.endpoint.split(".")[0]: rule.rule for rule in app.url_map.iter_rules()}
    assert prefixes["admin"].startswith("/admin")
    assert prefixes["selfservice"].startswith("/ssp")
    assert {"admin", "selfservice", "api", "health"} <= set(app.blueprints)
    assert app.url_map.bind("").match("/healthz") == ("health.healthz", {})


def test_extensions_are_bound_to_the_app(app):
    assert {"sqlalchemy", "migrate", "csrf", "limiter", "babel"} <= set(app.extensions)


def test_healthz_answers_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.content_type == "application/json"


@pytest.mark.parametrize("uri", [
    "sqlite:////nonexistent-directory/portal.db",
    "postgresql+psycopg://postgres@127.0.0.1:1/portal?connect_timeout=2",
], ids=["sqlite-unopenable", "postgresql-refused"])
def test_healthz_answers_503_in_json_when_the_database_does_not(tmp_path, uri):
    config = type("Broken", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": uri,
                                            "INSTANCE_PATH": str(tmp_path)})
    app = create_app(config)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path):
    config = type("NoKey", (TestConfig,), {"SECRET_KEY": None, "INSTANCE_PATH": str(tmp_path),
                                           "PORTAL_ENV": "development"})
    first = create_app(config).config["SECRET_KEY"]
    second = create_app(config).config["SECRET_KEY"]
    assert first == second and len(first) >= 48
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    config = type("Prod", (TestConfig,), {"SECRET_KEY": None, "INSTANCE_PATH": str(tmp_path),
                                          "PORTAL_ENV": "production"})
    with pytest.raises(ConfigurationError, match="SECRET_KEY must be set"):
        create_app(config)
    assert not (tmp_path / "secret_key").exists()


def test_postgres_urls_use_psycopg_3():
    from config import database_url
    assert database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert database_url(None).startswith("sqlite:///") and database_url(None).endswith(
        "instance/portal.db")


def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(app, db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas apply to the SQLite run only")
    pragma = lambda name: db.session.execute(sa.text(f"PRAGMA {name}")).scalar()  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 30000


def test_api_unknown_path_is_contract_json_not_html(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.get_json() == {"error": {"code": "not_found",
                                             "message": "There is no such resource."}}
