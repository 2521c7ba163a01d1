"""Configuration classes, read from the environment (PRODUCT.md §7)."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("PORTAL_INSTANCE_DIR", BASE_DIR / "instance"))


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def database_url(url: str | None) -> str:
    """Normalise a database URL: default SQLite file, psycopg 3 for PostgreSQL."""
    if not url:
        return f"sqlite:///{INSTANCE_DIR / 'portal.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Config:
    INSTANCE_PATH = str(INSTANCE_DIR)
    PORTAL_ENV = os.environ.get("PORTAL_ENV", "development")
    # None means: generate one into instance/ on first run (refused when PORTAL_ENV=production).
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    PORTAL_PUBLIC_URL = os.environ.get("PORTAL_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    REDIS_URL = os.environ.get("REDIS_URL") or None
    # How many reverse proxies in front of us may set X-Forwarded-For (0 = trust none).
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = PORTAL_PUBLIC_URL.lower().startswith("https://")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024  # CSV uploads; the API has its own 16 KiB limit
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    # Bulk batches are made in a thread of the web process while the page shows the progress;
    # the tests turn it off (their rows live in one connection no other thread sees).
    BULK_IN_BACKGROUND = True

    ADMIN_LOGIN_LIMIT = os.environ.get("ADMIN_LOGIN_LIMIT", "5 per 5 minutes")
    ADMIN_LOGIN_IP_LIMIT = os.environ.get("ADMIN_LOGIN_IP_LIMIT", "50 per 10 minutes")
    API_FAILED_ATTEMPTS_LIMIT = os.environ.get("API_FAILED_ATTEMPTS_LIMIT", "20 per 10 minutes")

    SMTP_HOST = os.environ.get("SMTP_HOST") or None
    SMTP_PORT = _int("SMTP_PORT", 25)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME") or None
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD") or None
    SMTP_STARTTLS = _bool("SMTP_STARTTLS")
    SMTP_TLS = _bool("SMTP_TLS")  # implicit TLS (usually port 465); wins over SMTP_STARTTLS
    SMTP_TIMEOUT = float(os.environ.get("SMTP_TIMEOUT") or 10)
    # A CA file to trust for the mail server, when its certificate is not in the system's store.
    SMTP_CA_FILE = os.environ.get("SMTP_CA_FILE") or None
    MAIL_FROM = os.environ.get("MAIL_FROM", "portal@localhost")
    # Try to deliver a QR code's mail right after the request that created it; the outbox
    # worker (flask outbox send --loop) delivers whatever this does not.
    MAIL_SEND_AFTER_COMMIT = _bool("MAIL_SEND_AFTER_COMMIT", True)
    OUTBOX_MAX_ATTEMPTS = _int("OUTBOX_MAX_ATTEMPTS", 8)
    OUTBOX_RETRY_SECONDS = _int("OUTBOX_RETRY_SECONDS", 60)      # first back-off, then doubled
    OUTBOX_RETRY_MAX_SECONDS = _int("OUTBOX_RETRY_MAX_SECONDS", 3600)
    # Webhooks (Admin → Webhooks): the worker `flask --app wsgi webhooks send --loop`.
    WEBHOOK_SEND_AFTER_COMMIT = _bool("WEBHOOK_SEND_AFTER_COMMIT", True)
    WEBHOOK_TIMEOUT = _int("WEBHOOK_TIMEOUT", 10)                  # seconds per POST
    WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 10)
    WEBHOOK_RETRY_SECONDS = _int("WEBHOOK_RETRY_SECONDS", 30)      # first back-off, then doubled
    WEBHOOK_RETRY_MAX_SECONDS = _int("WEBHOOK_RETRY_MAX_SECONDS", 3600)
    # Rotate secret: how long the previous secret still signs beside the new one
    WEBHOOK_SECRET_OVERLAP_HOURS = _int("WEBHOOK_SECRET_OVERLAP_HOURS", 24)
    # Receivers on this machine (127.0.0.0/8, ::1); link-local addresses are refused always
    WEBHOOK_ALLOW_LOOPBACK = _bool("WEBHOOK_ALLOW_LOOPBACK", False)

    # Android Management API (Admin → Android Management API; portal/amapi). AMAPI_ENDPOINT:
    # another server of Google's protocol (None: Google's); calls time out after AMAPI_TIMEOUT
    # seconds; 429/503 answers are retried AMAPI_RETRIES times, waiting Google's Retry-After
    # or a back-off from AMAPI_RETRY_BASE seconds, never more than AMAPI_MAX_WAIT each.
    AMAPI_ENDPOINT = os.environ.get("AMAPI_ENDPOINT") or None
    AMAPI_TIMEOUT = float(os.environ.get("AMAPI_TIMEOUT") or 20)
    AMAPI_RETRIES = _int("AMAPI_RETRIES", 3)
    AMAPI_RETRY_BASE = float(os.environ.get("AMAPI_RETRY_BASE") or 1)
    AMAPI_MAX_WAIT = float(os.environ.get("AMAPI_MAX_WAIT") or 30)
    # Pub/Sub pushes per sending address (POST /api/amapi/notifications); past it 429 and
    # Pub/Sub pushes again later.
    AMAPI_PUSH_LIMIT = os.environ.get("AMAPI_PUSH_LIMIT", "1200 per minute")
    # Google's keys for the OIDC tokens that authenticate Pub/Sub pushes.
    AMAPI_PUSH_CERTS_URL = os.environ.get(
        "AMAPI_PUSH_CERTS_URL", "https://www.googleapis.com/oauth2/v1/certs")
    # Seconds to connect to it and to wait for its answer (a push waits for that fetch; a
    # refused push is pushed again by Pub/Sub).
    AMAPI_PUSH_CERTS_TIMEOUT = float(os.environ.get("AMAPI_PUSH_CERTS_TIMEOUT") or 5)
    # Changes to the Self Service sign-in details wait at most this long for another one
    # (portal.amapi.lease) before the admin is asked to try again.
    AMAPI_SIGNIN_WAIT = float(os.environ.get("AMAPI_SIGNIN_WAIT") or 30)
    # The worker retries deletions owed to Google (first back-off, doubled, at most the max).
    AMAPI_TASK_RETRY_SECONDS = _int("AMAPI_TASK_RETRY_SECONDS", 60)
    AMAPI_TASK_RETRY_MAX_SECONDS = _int("AMAPI_TASK_RETRY_MAX_SECONDS", 3600)
    # Where Android Device Policy continues after a successful sign-in (Google's URL).
    AMAPI_ENROLL_URL = os.environ.get("AMAPI_ENROLL_URL",
                                      "https://enterprise.google.com/android/enroll")

    LDAP_URL = os.environ.get("LDAP_URL") or None
    LDAP_BIND_DN = os.environ.get("LDAP_BIND_DN") or None
    LDAP_BIND_PASSWORD = os.environ.get("LDAP_BIND_PASSWORD") or None
    LDAP_BASE_DN = os.environ.get("LDAP_BASE_DN") or None
    LDAP_USER_ATTRIBUTE = os.environ.get("LDAP_USER_ATTRIBUTE", "sAMAccountName")
    LDAP_CA_FILE = os.environ.get("LDAP_CA_FILE") or None
    LDAP_SECURITY = os.environ.get("LDAP_SECURITY") or None  # none | starttls | ldaps
    LDAP_USER_FILTER = os.environ.get("LDAP_USER_FILTER") or None
    LDAP_TIMEOUT = _int("LDAP_TIMEOUT", 5)

    AZURE_AUTHORITY = os.environ.get("AZURE_AUTHORITY") or None
    AZURE_TENANT = os.environ.get("AZURE_TENANT") or None
    AZURE_CLIENT_ID = os.environ.get("AZURE_CLIENT_ID") or None
    AZURE_CLIENT_SECRET = os.environ.get("AZURE_CLIENT_SECRET") or None
    # A CA file to trust for the OpenID provider, when it is not in the system's store.
    AZURE_CA_FILE = os.environ.get("AZURE_CA_FILE") or None
    SSP_SIGN_IN_LIMIT = os.environ.get("SSP_SIGN_IN_LIMIT", "5 per 5 minutes")
    SSP_SIGN_IN_IP_LIMIT = os.environ.get("SSP_SIGN_IN_IP_LIMIT", "300 per 10 minutes")
    # Start on an Android Device Policy QR code asks Google for a token: per signed-in user,
    # per address.
    SSP_DEVICE_POLICY_LIMIT = os.environ.get("SSP_DEVICE_POLICY_LIMIT", "20 per hour")
    SSP_DEVICE_POLICY_IP_LIMIT = os.environ.get("SSP_DEVICE_POLICY_IP_LIMIT", "300 per 10 minutes")
    # An end user's Self Service Portal session ends after this long without a request: the
    # phone's sign-in is a one-time visit (the admin console keeps PERMANENT_SESSION_LIFETIME).
    SSP_SESSION_IDLE_MINUTES = _int("SSP_SESSION_IDLE_MINUTES", 15)

    COMPANION_COMPONENT_NAME = os.environ.get("COMPANION_COMPONENT_NAME") or None
    COMPANION_DOWNLOAD_URL = os.environ.get("COMPANION_DOWNLOAD_URL") or None
    COMPANION_SIGNATURE_CHECKSUM = os.environ.get("COMPANION_SIGNATURE_CHECKSUM") or None
    # A CA the portal trusts besides the system's when it fetches over https (Admin →
    # Companion's Fetch, Preflight's checks): for tests and a staging CA. Phones trust only
    # public CAs during setup, which Preflight says.
    TRUSTED_CA_FILE = os.environ.get("TRUSTED_CA_FILE") or None
    # The Admin API (/api/admin/v1): requests allowed per token (each its own budget).
    ADMIN_API_LIMIT = os.environ.get("ADMIN_API_LIMIT", "600 per minute")
    # Devices → Devices: a device still provisioning after this long is "stuck".
    DEVICE_STUCK_AFTER_MINUTES = _int("DEVICE_STUCK_AFTER_MINUTES", 120)


class TestConfig(Config):
    TESTING = True
    PORTAL_ENV = "test"
    SECRET_KEY = "test-secret-key-not-for-production-0123456789"
    SQLALCHEMY_DATABASE_URI = database_url(
        os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'test.db'}")
    PORTAL_PUBLIC_URL = "https://portal.test"
    SESSION_COOKIE_SECURE = False
    REDIS_URL = None
    PASSWORD_HASH_PROFILE = "cheapest"
    # Throttling has its own tests, which lower these limits explicitly.
    ADMIN_LOGIN_LIMIT = "1000 per minute"
    ADMIN_LOGIN_IP_LIMIT = "1000 per minute"
    SSP_SIGN_IN_LIMIT = "1000 per minute"
    SSP_SIGN_IN_IP_LIMIT = "1000 per minute"
    SSP_DEVICE_POLICY_LIMIT = "1000 per minute"
    SSP_DEVICE_POLICY_IP_LIMIT = "1000 per minute"
    ADMIN_API_LIMIT = "100000 per minute"
    AMAPI_PUSH_LIMIT = "100000 per minute"
    # Deterministic mail: tests deliver the outbox themselves (tests/mail turns this on).
    MAIL_SEND_AFTER_COMMIT = False
    BULK_IN_BACKGROUND = False
    WEBHOOK_SEND_AFTER_COMMIT = False
    WEBHOOK_ALLOW_LOOPBACK = True      # the tests' receivers run on 127.0.0.1
    # A call to Google or a directory inside a transaction raises (portal.database)
    STRICT_TRANSACTIONS = True
    # The loopback stand-in answers at once; tests that retry should not sleep for seconds.
    AMAPI_TIMEOUT = 2.0
    AMAPI_RETRIES = 2
    AMAPI_RETRY_BASE = 0.01
    AMAPI_MAX_WAIT = 0.5
