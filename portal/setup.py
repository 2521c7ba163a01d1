"""The steps create_app runs: secret key, extensions, blueprints, commands."""
import logging
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context


class ConfigurationError(RuntimeError):
    pass


def configure_secret_key(app: Flask) -> None:
    """Use SECRET_KEY from the environment, or a key generated once into instance/.

    Production must set it explicitly: a key that lives only on one machine's disk breaks
    sessions and every encrypted secret as soon as a second machine serves the portal.
    """
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("PORTAL_ENV") == "production":
        raise ConfigurationError("SECRET_KEY must be set when PORTAL_ENV=production.")
    path = Path(app.instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        app.config["SECRET_KEY"] = path.read_text().strip()
        return
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    app.config["SECRET_KEY"] = key


def register_extensions(app: Flask) -> None:
    from portal import models  # noqa: F401  (every table, for Alembic and create_all)
    from portal.database import configure_sqlite
    from portal.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    app.teardown_appcontext(_end_session)  # runs before Flask-SQLAlchemy's own teardown
    with app.app_context():
        for engine in db.engines.values():
            configure_sqlite(engine)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"),
                     render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    from portal.i18n import TRANSLATIONS_DIR, compile_catalogs, select_locale
    compile_catalogs()
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel.init_app(app, locale_selector=select_locale)
    # Flask-Babel caches the locale on the app context, which outlives one request where an
    # app context was pushed beforehand (the CLI, tests): decide afresh for every request.
    from flask_babel import refresh
    app.before_request(refresh)
    htmx.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    # Redis failing between a limit's check and its count must not turn a request into a 500.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)
    _log_throttling_storage()

    from portal.web.session import configure_login
    configure_login(app, login_manager)


# Flask-Limiter's words for its storage going and coming back, and what they mean here.
_STORAGE_NEWS = {
    "Rate limit storage unreachable - falling back to in-memory storage":
        "Redis (REDIS_URL) does not answer: throttling falls back to the memory of this "
        "process (pid %d), which counts failed attempts on its own until Redis answers again.",
    "Rate limit storage recovered":
        "Redis (REDIS_URL) answers again: this process (pid %d) shares throttling again.",
}


class _ThrottlingStorageLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        news = _STORAGE_NEWS.get(record.getMessage())
        if news and has_app_context():
            current_app.logger.warning(news, os.getpid())


def _storage_news_and_warnings(record: logging.LogRecord) -> bool:
    # Not the info line Flask-Limiter writes for every refused request.
    return record.levelno >= logging.WARNING or record.getMessage() in _STORAGE_NEWS


def _log_throttling_storage() -> None:
    """Flask-Limiter notes when Redis stops answering and when it is back on a logger of its
    own that has no handler, so nobody would see it: say it in the portal's log."""
    log = logging.getLogger("flask-limiter")
    log.setLevel(logging.INFO)  # "recovered" is an info line
    if _storage_news_and_warnings not in log.filters:
        log.addFilter(_storage_news_and_warnings)
    if not any(isinstance(handler, _ThrottlingStorageLog) for handler in log.handlers):
        log.addHandler(_ThrottlingStorageLog())


def _end_session(exc) -> None:
    """End the request's database session. When the database went away under the request
    (PostgreSQL restarted), the closing ROLLBACK fails: drop the connection instead of letting
    the error escape after the answer was made (gunicorn would replace it with a bare 500)."""
    from portal.extensions import db
    try:
        db.session.remove()
    except sa.exc.DBAPIError as error:
        current_app.logger.warning("database connection dropped at the end of a request: %s",
                                   str(error.orig or error).strip().splitlines()[0][:200])
        db.session().invalidate()
        db.session.remove()


def register_blueprints(app: Flask) -> None:
    from portal.admin import bp as admin_bp
    from portal.adminapi import bp as adminapi_bp
    from portal.api import bp as api_bp
    from portal.api.amapi_push import bp as amapi_push_bp
    from portal.extensions import csrf
    from portal.selfservice import bp as ssp_bp
    from portal.web import attempts, converters, errors, headers, uploads
    from portal.web.companion_apk import bp as companion_apk_bp
    from portal.web.health import bp as health_bp

    converters.register(app)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(ssp_bp, url_prefix="/ssp")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(adminapi_bp, url_prefix="/api/admin/v1")
    app.register_blueprint(amapi_push_bp, url_prefix="/api/amapi")
    app.register_blueprint(health_bp)
    app.register_blueprint(companion_apk_bp)
    # The Companion authenticates with a bearer token or a one-time credential in the body,
    # never with a cookie, so there is no session for a cross-site request to ride on.
    csrf.exempt(api_bp)
    # The Admin API too: a bearer token in a header, never a cookie (portal.adminapi.auth).
    csrf.exempt(adminapi_bp)
    # Google's Pub/Sub pushes: an OIDC token in a header, never a cookie (portal.api.amapi_push).
    csrf.exempt(amapi_push_bp)
    csrf.exempt(health_bp)
    errors.register(app)
    headers.register(app)
    attempts.register(app)
    uploads.register(app)


def register_cli(app: Flask) -> None:
    from portal.cli import register
    register(app)
