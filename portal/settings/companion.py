"""The Companion settings: the database row wins once saved, the environment seeds it; an APK
uploaded or fetched here fills them and is kept (instance/companion/) to check and serve."""
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app

from portal import outbound
from portal.android.apk import ApkError, ApkFacts, read_apk
from portal.android.payload import CompanionConfig, validate_companion
from portal.audit.log import record
from portal.database import db, read_once, save_singleton
from portal.settings.errors import SettingsError
from portal.settings.models import CompanionSettings

# Clearly fake values for the quick start; the checksum is the SHA-256 of the text
# "example companion signing certificate", not of any real certificate.
EXAMPLE_COMPONENT = "com.example.companion/.AdminReceiver"
EXAMPLE_DOWNLOAD_URL = "https://downloads.example.com/companion/companion-example.apk"
EXAMPLE_CHECKSUM = "RtsMBFN2G-wzu3HHwYZaQPzFoDuIpVtHkuEHDhnix34"

DEFAULT_SCHEME = "companion"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{1,31}")
# Schemes a browser or Android opens itself (or that run code, or reach another app) would
# never reach the Companion; only the Companion's own custom scheme may carry the ticket.
RESERVED_SCHEMES = frozenset({
    "http", "https", "javascript", "data", "vbscript", "file", "intent", "about", "blob",
    "filesystem", "view-source", "ftp", "ws", "wss", "mailto", "tel", "sms", "smsto", "mms",
    "geo", "market", "content", "android-app", "chrome", "chrome-extension", "jar", "urn"})
_MAX_LENGTHS = {"component_name": 255, "download_url": 2048}
APK_MAX_BYTES = 100 * 1024 * 1024
APK_FETCH_TIMEOUT = 30          # seconds to connect, and between two reads of the download
APK_FETCH_DEADLINE = 120        # seconds for the whole download
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEEP_UNSAVED_APKS = 3600       # seconds an APK read but not (yet) saved stays on disk


class CompanionError(SettingsError):
    """The Companion settings cannot be saved, or an APK cannot be read."""


@dataclass(frozen=True)
class StoredApk:
    """An APK the portal read and kept, found again by the SHA-256 of the file."""
    sha256: str
    size: int
    facts: ApkFacts


@read_once
def current() -> CompanionConfig | None:
    """The configured Companion, or None when nothing (database or environment) sets it."""
    row = db.session.get(CompanionSettings, 1)
    if row is not None:
        return CompanionConfig(row.component_name, row.download_url, row.signature_checksum,
                               row.leave_system_apps_enabled)
    cfg = current_app.config
    values = (cfg.get("COMPANION_COMPONENT_NAME"), cfg.get("COMPANION_DOWNLOAD_URL"),
              cfg.get("COMPANION_SIGNATURE_CHECKSUM"))
    return CompanionConfig(*values) if all(values) else None


def source() -> str | None:
    """Where current() comes from: "saved" (this console), "environment" or None."""
    if db.session.get(CompanionSettings, 1) is not None:
        return "saved"
    return "environment" if current() is not None else None


def enrollment_link_scheme() -> str:
    row = db.session.get(CompanionSettings, 1)
    return row.enrollment_link_scheme if row is not None else DEFAULT_SCHEME


def is_example(config: CompanionConfig | None) -> bool:
    """True when any of the Companion's values is the quick start's example."""
    return config is not None and (
        config.component_name == EXAMPLE_COMPONENT
        or config.download_url == EXAMPLE_DOWNLOAD_URL
        or config.signature_checksum == EXAMPLE_CHECKSUM)


def apk_folder() -> Path:
    return Path(current_app.instance_path) / "companion"


def stored_apk(sha256: str | None) -> StoredApk | None:
    """The APK read earlier with this file SHA-256; None for no, a malformed or a pruned one."""
    if not sha256 or not _SHA256.fullmatch(sha256):
        return None
    try:
        kept = json.loads((apk_folder() / f"{sha256}.json").read_text())
        facts = ApkFacts(**{**kept["facts"], "schemes": tuple(kept["facts"]["schemes"])})
        return StoredApk(sha256, kept["size"], facts)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def saved_apk() -> tuple[StoredApk, Path] | None:
    """The APK saved with the settings and its file, when there is one on disk."""
    row = db.session.get(CompanionSettings, 1)
    apk = stored_apk(row.apk_sha256) if row is not None else None
    path = apk_folder() / f"{apk.sha256}.apk" if apk else None
    return (apk, path) if path is not None and path.is_file() else None


def read_uploaded_apk(data: bytes, *, actor: str, filename: str = "") -> StoredApk:
    """Read an uploaded APK, keep it and record companion.apk_read; commits.

    Raises CompanionError({"apk": message}) when it is too large or not a signed APK."""
    return _read_and_keep(data, "apk", actor=actor, source=f"upload {filename}".strip())


def fetch_apk(url: str, *, actor: str) -> StoredApk:
    """Download the APK at url (https only, APK_MAX_BYTES at most), read and keep it; commits.

    Raises CompanionError({"download_url": message}) when it cannot be fetched or read."""
    if message := _fetch_url_error(url):
        raise CompanionError({"download_url": message})
    return _read_and_keep(_download(url), "download_url", actor=actor, source=url)


def _fetch_url_error(url: str) -> str | None:
    if not url:
        return "Enter the https:// address of the APK as the download URL, then fetch."
    try:
        parts = urlsplit(url)
        secure = parts.scheme == "https" and bool(parts.hostname)
    except ValueError:
        secure = False
    if not secure:
        return "The portal fetches the APK only over https://; enter an https:// address."
    return None


def _download(url: str) -> bytes:
    try:
        answer = outbound.fetch(url, current_app.config.get("TRUSTED_CA_FILE"),
                                limit=APK_MAX_BYTES, seconds=APK_FETCH_DEADLINE,
                                timeout=APK_FETCH_TIMEOUT,
                                headers={"Accept": "application/vnd.android.package-archive"})
    except outbound.TooLarge:
        raise CompanionError({"download_url": apk_too_large_message()}) from None
    except outbound.FetchError as error:
        raise CompanionError({"download_url": f"The download URL: {error.message}. "
                                              f"{error.fix}"}) from None
    if answer.status != 200:
        raise CompanionError({"download_url": f"The download URL answered HTTP "
                                              f"{answer.status}, not the APK."})
    return answer.body


def apk_too_large_message() -> str:
    """What an admin reads about an APK over APK_MAX_BYTES."""
    return f"The file is larger than {APK_MAX_BYTES // (1024 * 1024)} MB."


def _read_and_keep(data: bytes, field: str, *, actor: str, source: str) -> StoredApk:
    if len(data) > APK_MAX_BYTES:
        raise CompanionError({field: apk_too_large_message()})
    try:
        facts = read_apk(data)
    except ApkError as error:
        raise CompanionError({field: error.message}) from None
    apk = StoredApk(hashlib.sha256(data).hexdigest(), len(data), facts)
    folder = apk_folder()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{apk.sha256}.apk").write_bytes(data)
    (folder / f"{apk.sha256}.json").write_text(json.dumps({"size": apk.size,
                                                           "facts": asdict(facts)}))
    record("companion.apk_read", actor_type="admin", actor=actor, source=source[:300],
           sha256=apk.sha256, size=apk.size, **asdict(facts))
    db.session.commit()
    return apk


def apk_mismatches(config: CompanionConfig, apk: StoredApk) -> dict[str, str]:
    """{field: message} where the typed values disagree with the APK (both values shown)."""
    errors = {}
    facts = apk.facts
    typed = (config.signature_checksum or "").rstrip("=")
    if typed and typed != facts.signature_checksum:
        errors["signature_checksum"] = (
            f"This checksum ({typed}) does not match the APK's signing certificate "
            f"({facts.signature_checksum}); Android would refuse to install it. Use the APK's "
            "value, or read the APK you mean.")
    component = config.component_name or ""
    if facts.component_name is None:
        errors["component_name"] = (
            f"The APK ({facts.package}) has no receiver guarded by "
            "android.permission.BIND_DEVICE_ADMIN, so it cannot become the device owner.")
    elif component and component != facts.component_name:
        errors["component_name"] = (
            f"This component ({component}) is not the APK's device admin receiver "
            f"({facts.component_name}); use the APK's value, or read the APK you mean.")
    return errors


def portal_apk_url(apk: StoredApk) -> str | None:
    """Where the portal serves this APK once saved: PORTAL_PUBLIC_URL/companion/<code>.apk."""
    if apk.facts.version_code is None:
        return None
    base = current_app.config["PORTAL_PUBLIC_URL"].rstrip("/")
    return f"{base}/companion/{apk.facts.version_code}.apk"


def _prune_apks(keep: set[str | None]) -> None:
    """Remove APKs read an hour ago or more and neither saved nor served."""
    folder = apk_folder()
    if not folder.is_dir():
        return
    cutoff = time.time() - _KEEP_UNSAVED_APKS
    for path in folder.iterdir():
        if path.stem not in keep and path.suffix in (".apk", ".json") \
                and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def scheme_error(scheme: str) -> str | None:
    if not _SCHEME.fullmatch(scheme or ""):
        return ("Enrollment link scheme must be 2–32 characters: a lower-case letter, then "
                "lower-case letters, digits, +, . or -, e.g. companion.")
    if scheme in RESERVED_SCHEMES:
        return (f'Enrollment link scheme "{scheme}" would be opened by the browser or by another '
                "app, not by the Companion; use the Companion's own custom scheme, e.g. "
                "companion.")
    return None


def validate_companion_settings(config: CompanionConfig, scheme: str,
                                apk_sha256: str | None = None) -> dict[str, str]:
    """Return {field: message} for every problem; {} when save_companion will accept them.
    With apk_sha256 (an APK read earlier), the component and checksum must be the APK's."""
    errors = validate_companion(config)
    for field, limit in _MAX_LENGTHS.items():
        if field not in errors and len(getattr(config, field) or "") > limit:
            errors[field] = f"This value must be at most {limit} characters."
    if message := scheme_error(scheme):
        errors["enrollment_link_scheme"] = message
    if apk_sha256:
        apk = stored_apk(apk_sha256)
        if apk is None:
            errors["apk"] = "The APK read earlier is no longer here; read or fetch it again."
        else:
            for field, message in apk_mismatches(config, apk).items():
                errors.setdefault(field, message)
            if message := _served_version_error(config, apk):
                errors.setdefault("apk", message)
    return errors


def _served_version_error(config: CompanionConfig, apk: StoredApk) -> str | None:
    """The portal's URL names the version code and may be cached for a year: another file under
    a version code already served there would reach some devices and not others."""
    url = portal_apk_url(apk)
    served = served_apk(apk.facts.version_code) if url == config.download_url else None
    if served is None or served[0].sha256 == apk.sha256:
        return None
    return (f"The portal already serves another APK with version code "
            f"{apk.facts.version_code} at {url}, and devices and caches may keep that file; "
            "raise the APK's versionCode, or use another download URL.")


def served_apk(version_code: int) -> tuple[StoredApk, Path] | None:
    """The APK the portal serves at /companion/<version_code>.apk: one saved with that address.
    It stays served after newer ones, for the QR codes created while it was the Companion."""
    try:
        sha256 = (apk_folder() / "served" / str(version_code)).read_text().strip()
    except OSError:
        return None
    apk = stored_apk(sha256)
    path = apk_folder() / f"{sha256}.apk"
    return (apk, path) if apk is not None and path.is_file() else None


def _publish(apk: StoredApk) -> None:
    served = apk_folder() / "served"
    served.mkdir(exist_ok=True)
    (served / str(apk.facts.version_code)).write_text(apk.sha256)


def _served_sha256s() -> set[str]:
    served = apk_folder() / "served"
    return {path.read_text().strip() for path in served.iterdir()} if served.is_dir() else set()


def save_companion(component_name: str, download_url: str, signature_checksum: str,
                   leave_system_apps_enabled: bool, enrollment_link_scheme: str, *,
                   actor: str, apk_sha256: str | None = None) -> CompanionSettings:
    """Save the Companion settings (they then win over COMPANION_*) and commit.

    With apk_sha256 the APK read earlier is saved with them (its version and file checksum are
    recorded, the portal serves it); its component and checksum must be the ones typed.
    Raises CompanionError, with nothing written, when Android would refuse a value.
    QR codes created earlier keep the payload they were created with.
    """
    config = CompanionConfig(component_name, download_url, signature_checksum,
                             bool(leave_system_apps_enabled))
    errors = validate_companion_settings(config, enrollment_link_scheme, apk_sha256)
    if errors:
        raise CompanionError(errors)
    apk = stored_apk(apk_sha256)
    values = {"component_name": component_name, "download_url": download_url,
              "signature_checksum": signature_checksum,
              "leave_system_apps_enabled": bool(leave_system_apps_enabled),
              "enrollment_link_scheme": enrollment_link_scheme,
              "apk_sha256": apk.sha256 if apk else None,
              "apk_version_code": apk.facts.version_code if apk else None,
              "apk_version_name": (apk.facts.version_name or "")[:255] or None if apk else None}
    def fill(row):
        for name, value in values.items():
            setattr(row, name, value)
        record("settings.companion", actor_type="admin", actor=actor,
               **{name: value for name, value in values.items()
                  if value is not None or not name.startswith("apk_")})
    row = save_singleton(CompanionSettings, fill)
    if apk is not None and portal_apk_url(apk) == download_url:
        _publish(apk)
    _prune_apks(keep={values["apk_sha256"], *_served_sha256s()})
    return row


def seed_example_companion() -> bool:
    """Fill in the example Companion when none is configured; True when it did."""
    if current() is not None:
        return False
    db.session.add(CompanionSettings(id=1, component_name=EXAMPLE_COMPONENT,
                                     download_url=EXAMPLE_DOWNLOAD_URL,
                                     signature_checksum=EXAMPLE_CHECKSUM))
    record("settings.companion.example", actor_type="operator", actor="quick start")
    db.session.commit()
    return True

