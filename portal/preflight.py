"""Preflight: what makes a phone say "Can't set up device", found before a QR code is printed.

Each check returns a Check (pass, warning or failure; what it found; how to fix it). The
settings are read first, in the caller's app context; the network checks then run at once in
threads with short timeouts, so a run takes a few seconds. Only run_and_save() writes.
"""
import ipaddress
import json
import logging
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from portal.android.payload import CompanionConfig
from portal.audit.log import record
from portal.audit.models import AuditEvent
from portal.database import UTCDateTime, db, end_transaction, utcnow
from portal.directory import azure, ldap
from portal.enrollment.models import ZeroTouchEntry
from portal.mail import server as mail_server
from portal.mail.smtp import STEP_NAMES, DeliveryError, probe
from portal.outbound import FetchError, fetch
from portal.settings import companion, sign_in

log = logging.getLogger(__name__)

TIMEOUT = 5.0                   # seconds for each connection and each answer
DOWNLOAD_SECONDS = 20.0         # the whole APK download
DEADLINE = 25.0                 # the whole run: a check still going then is a failure
MAX_APK_BYTES = 100 * 1024 * 1024
ZERO_TOUCH_MAX_AGE = timedelta(days=30)
KEPT_RUNS = 20
# Host names that only a company's own network resolves.
PRIVATE_SUFFIXES = (".local", ".lan", ".internal", ".intranet", ".corp", ".home", ".home.arpa",
                    ".localdomain", ".private", ".test", ".example", ".invalid")


class Status(StrEnum):
    PASS = "pass"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    found: str
    fix: str = ""


class PreflightRun(db.Model):
    """One run of the preflight, as the console's page and the wizard's summary show it."""

    __tablename__ = "preflight_runs"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    ran_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_type: so.Mapped[str] = so.mapped_column(sa.String(8))
    actor: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    failures: so.Mapped[int] = so.mapped_column(default=0)
    warnings: so.Mapped[int] = so.mapped_column(default=0)
    results: so.Mapped[list] = so.mapped_column(sa.JSON)

    @property
    def checks(self) -> list[Check]:
        return [Check(item["name"], Status(item["status"]), item["found"], item.get("fix", ""))
                for item in self.results]


@dataclass(frozen=True)
class Inputs:
    """Everything the checks need from the settings, read before the threads start."""

    public_url: str
    ca_file: str | None
    companion: CompanionConfig | None
    example_companion: bool
    mail: mail_server.MailServer
    sign_in: sign_in.SignInMethods
    zero_touch_entries: int
    zero_touch_updated: datetime | None
    now: datetime


def gather() -> Inputs:
    """Read the settings the checks look at (the database wins over the environment)."""
    cfg, config = current_app.config, companion.current()
    updated = max(filter(None, (
        db.session.scalar(sa.select(sa.func.max(ZeroTouchEntry.created_at))),
        db.session.scalar(sa.select(sa.func.max(AuditEvent.occurred_at))
                          .where(AuditEvent.action == "zero_touch.import")))), default=None)
    return Inputs(public_url=cfg["PORTAL_PUBLIC_URL"], ca_file=cfg.get("TRUSTED_CA_FILE"),
                  companion=config, example_companion=companion.is_example(config),
                  mail=mail_server.current(), sign_in=sign_in.current(),
                  zero_touch_entries=db.session.scalar(
                      sa.select(sa.func.count()).select_from(ZeroTouchEntry)),
                  zero_touch_updated=updated, now=utcnow())


# The public URL

def check_public_url(inputs: Inputs) -> Check:
    name, url = "Public URL", inputs.public_url
    parts = urlsplit(url)
    if parts.scheme != "https":
        return Check(name, Status.FAILURE, f"PORTAL_PUBLIC_URL is {url}: devices would send "
                     "passwords, OTPs and device tokens over plain http.",
                     "Serve the portal over https (e.g. a reverse proxy with a certificate from "
                     "a public CA) and set PORTAL_PUBLIC_URL=https://….")
    problem = _host_problem(parts.hostname or "")
    if problem:
        status, why = problem
        return Check(name, status, f"PORTAL_PUBLIC_URL is {url}: {why}.",
                     "Set PORTAL_PUBLIC_URL to the https address phones reach, on Wi-Fi and on "
                     "mobile data, such as https://provisioning.example.com.")
    return Check(name, Status.PASS, f"PORTAL_PUBLIC_URL is {url}.")


def _host_problem(host: str) -> tuple[Status, str] | None:
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback or address.is_unspecified:
            return Status.FAILURE, "a loopback address, which on a phone is the phone itself"
        if address.is_private or address.is_link_local:
            return Status.WARNING, ("a private address: only devices inside your network "
                                    "reach it, not phones on mobile data")
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return Status.FAILURE, "localhost, which on a phone is the phone itself"
    if "." not in host or host.endswith(PRIVATE_SUFFIXES):
        return Status.WARNING, (f"{host} looks like a name only your own network resolves; "
                                "phones on mobile data or another Wi-Fi cannot reach it")
    return None


def check_public_url_answers(inputs: Inputs) -> Check:
    name, url = "Public URL answers", inputs.public_url + "/healthz"
    try:
        answer = fetch(url, inputs.ca_file, limit=4096, seconds=TIMEOUT, timeout=TIMEOUT)
    except FetchError as error:
        return Check(name, Status.FAILURE, f"{url}: {error.message}", error.fix)
    if answer.status == 503:
        return Check(name, Status.FAILURE, f"{url} answered 503: the portal's database does "
                     "not answer.", "Check DATABASE_URL and that the database server runs.")
    if answer.status != 200 or _json(answer.body).get("status") != "ok":
        return Check(name, Status.FAILURE, f"{url} answered {answer.status}, not the portal's "
                     "health check.", "Point PORTAL_PUBLIC_URL (and the reverse proxy) at this "
                     "portal.")
    return Check(name, Status.PASS, f"{url} answered ok through {answer.final_url}.")


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# The Companion's download

def check_download_url(inputs: Inputs) -> Check:
    name = "Download URL"
    if inputs.companion is None:
        return Check(name, Status.FAILURE, "No Companion is set, so no QR code can be made.",
                     "Enter the Companion under Admin → Companion.")
    url = inputs.companion.download_url
    parts = urlsplit(url)
    if parts.scheme != "https":
        return Check(name, Status.FAILURE, f"The download URL is {url}: not https.",
                     "Serve the APK over https and enter its https:// address under Admin → "
                     "Companion.")
    problem = _host_problem(parts.hostname or "")
    if problem:
        return Check(name, problem[0], f"The download URL is {url}: {problem[1]}.",
                     "Put the APK where phones can download it during setup and enter that "
                     "address under Admin → Companion.")
    return Check(name, Status.PASS, f"The download URL is {url}.")


def check_companion_apk(inputs: Inputs) -> Check:
    name, config = "Companion APK", inputs.companion
    if config is None:
        return Check(name, Status.FAILURE, "No Companion is set: there is no APK to check.",
                     "Enter the Companion under Admin → Companion.")
    if config.download_url == companion.EXAMPLE_DOWNLOAD_URL:
        return Check(name, Status.FAILURE, "The download URL is the quick start's example: "
                     "there is no APK there.", "Enter your Companion's real download URL under "
                     "Admin → Companion.")
    if urlsplit(config.download_url).scheme != "https":
        return Check(name, Status.FAILURE, f"{config.download_url} is not https: not "
                     "downloaded.", "Serve the APK over https.")
    try:
        answer = fetch(config.download_url, inputs.ca_file, limit=MAX_APK_BYTES,
                       seconds=DOWNLOAD_SECONDS, timeout=TIMEOUT)
    except FetchError as error:
        return Check(name, Status.FAILURE, f"{config.download_url}: {error.message}", error.fix)
    if answer.status != 200:
        return Check(name, Status.FAILURE, f"{config.download_url} answered {answer.status} "
                     f"{answer.reason}.", "Put the APK at this address, or enter the address "
                     "where it is under Admin → Companion.")
    return _compare_apk(name, config, answer.body)


def _compare_apk(name: str, config: CompanionConfig, data: bytes) -> Check:
    from portal.android.apk import ApkError, read_apk
    try:
        facts = read_apk(data)
    except ApkError as error:
        return Check(name, Status.FAILURE, f"The download is not a Companion APK "
                     f"({len(data):,} bytes): {error.message}",
                     "Put the Companion's signed APK at the download URL.")
    problems = []
    if _checksum(facts.signature_checksum) != _checksum(config.signature_checksum):
        problems.append(f"the APK's signing certificate is {facts.signature_checksum}, the "
                        f"settings say {config.signature_checksum}")
    if facts.component_name is None:
        problems.append("the APK has no receiver guarded by BIND_DEVICE_ADMIN, so it cannot "
                        "become device owner")
    elif _component(facts.component_name) != _component(config.component_name):
        problems.append(f"the APK's device-admin receiver is {facts.component_name}, the "
                        f"settings say {config.component_name}")
    what = f"{facts.package} {facts.version_name} ({facts.version_code})"
    if problems:
        return Check(name, Status.FAILURE, f"{what}: " + "; ".join(problems) + ".",
                     "Read the values from the APK under Admin → Companion, or put the APK "
                     "these settings describe at the download URL.")
    return Check(name, Status.PASS, f"{what}: its checksum and receiver match the settings.")


def _checksum(value: str) -> str:
    return (value or "").strip().rstrip("=")


def _component(value: str) -> str:
    """package/.Receiver and package/package.Receiver are the same component."""
    package, _, receiver = value.strip().partition("/")
    return f"{package}/{package}{receiver}" if receiver.startswith(".") else value.strip()


def check_quick_start(inputs: Inputs) -> Check:
    name = "Quick-start values"
    if inputs.example_companion:
        return Check(name, Status.FAILURE, "The Companion settings still hold the quick start's "
                     "example values: no phone can install that Companion.",
                     "Enter your Companion's values under Admin → Companion.")
    if inputs.companion is None:
        return Check(name, Status.FAILURE, "No Companion is set.",
                     "Enter the Companion under Admin → Companion.")
    return Check(name, Status.PASS, "The Companion settings are your own, not the examples.")


def check_mail(inputs: Inputs) -> Check:
    name, mail = "Mail server", inputs.mail
    if mail.config is None and mail.source is None:
        return Check(name, Status.WARNING, "No mail server is set: QR codes' mail waits in the "
                     "Outbox.", "Enter the mail server under Admin → Mail.")
    if mail.config is None:
        return Check(name, Status.FAILURE, mail.problem or "The mail server cannot be used.",
                     "Correct it under Admin → Mail.")
    steps = []
    try:
        probe(mail.config, lambda step, detail: steps.append(detail))
    except DeliveryError as error:
        return Check(name, Status.FAILURE, f"{STEP_NAMES[error.step]}: {error.detail}",
                     "Correct the server under Admin → Mail; Send test mail there shows every "
                     "step.")
    return Check(name, Status.PASS, "; ".join(steps) + " (no mail sent).")


def check_directory(inputs: Inputs) -> Check:
    name, methods = "Active Directory", inputs.sign_in
    if methods.ldap is None:
        if methods.ldap_enabled:
            return Check(name, Status.FAILURE, "Active Directory sign-in is on, but its "
                         "settings are incomplete.", "Complete them under Admin → Sign-in "
                         "methods.")
        return Check(name, Status.PASS, "No directory is set up: nothing to check.")
    end_transaction()
    return _connection(name, ldap.test_connection(methods.ldap))


def check_azure(inputs: Inputs) -> Check:
    name, methods = "Azure AD", inputs.sign_in
    if methods.azure is None:
        if methods.azure_enabled:
            return Check(name, Status.FAILURE, "Azure AD sign-in is on, but its settings are "
                         "incomplete.", "Complete them under Admin → Sign-in methods.")
        return Check(name, Status.PASS, "Azure AD sign-in is not set up: nothing to check.")
    end_transaction()
    return _connection(name, azure.test_connection(methods.azure))


def _connection(name: str, steps: list) -> Check:
    """A Test connection's steps as one check: its first failed step, else its last."""
    failed = next((step for step in steps if not step.ok), None)
    if failed:
        return Check(name, Status.FAILURE, f"{failed.name}: {failed.detail}",
                     "Correct the settings under Admin → Sign-in methods; Test connection "
                     "there shows every step.")
    return Check(name, Status.PASS, "; ".join(f"{step.name}: {step.detail}" for step in steps))


def check_zero_touch(inputs: Inputs) -> Check:
    name = "Zero-Touch / Knox list"
    if not inputs.zero_touch_entries:
        return Check(name, Status.PASS, "The list is empty: if your company registers devices "
                     "in Zero-Touch or Knox, import them under Admin → Zero-Touch / Knox.")
    age = inputs.now - inputs.zero_touch_updated
    count = inputs.zero_touch_entries
    found = f"{count:,} device{'s' if count != 1 else ''}, last imported {age.days} days ago"
    if age > ZERO_TOUCH_MAX_AGE:
        return Check(name, Status.WARNING, found + ": devices registered since may enroll "
                     "with a QR code.", "Export the current list from Zero-Touch and Knox and "
                     "import it under Admin → Zero-Touch / Knox.")
    return Check(name, Status.PASS, found + ".")


def check_google_approval(inputs: Inputs) -> Check:
    package = inputs.companion.component_name.partition("/")[0] if inputs.companion else None
    return Check("Google's approved device-policy apps", Status.WARNING,
                 "Reminder: on devices with Google services, setup installs only device-policy "
                 "apps Google has approved; the portal cannot check that list.",
                 f"Make sure the Companion's package {package or '(not set)'} is on Google's "
                 "list of approved device-policy apps before printing QR codes.")


# Each check with the name it reports under, for a check that ends without its own result.
CHECKS = {check_public_url: "Public URL", check_public_url_answers: "Public URL answers",
          check_download_url: "Download URL", check_companion_apk: "Companion APK",
          check_quick_start: "Quick-start values", check_mail: "Mail server",
          check_directory: "Active Directory", check_azure: "Azure AD",
          check_zero_touch: "Zero-Touch / Knox list",
          check_google_approval: "Google's approved device-policy apps"}


def run_all(inputs: Inputs | None = None) -> list[Check]:
    """Every check, in CHECKS' order, run at once; never raises for what a check finds."""
    inputs = inputs or gather()
    executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="preflight")
    futures = [executor.submit(_safely, check, inputs) for check in CHECKS]
    wait(futures, timeout=DEADLINE)
    executor.shutdown(wait=False, cancel_futures=True)
    return [future.result() if future.done() else
            Check(CHECKS[check], Status.FAILURE, f"No result within {DEADLINE:g} s.",
                  "Check the servers this check talks to.")
            for check, future in zip(CHECKS, futures)]


def _safely(check, inputs: Inputs) -> Check:
    try:
        return check(inputs)
    except Exception as error:  # one broken check must not hide the others' results
        log.exception("preflight: %s raised", check.__name__)
        return Check(CHECKS[check], Status.FAILURE,
                     f"The check itself failed: {type(error).__name__}: {error}",
                     "Report this to whoever runs the portal.")


def run_and_save(*, actor_type: str, actor: str | None) -> PreflightRun:
    """Run every check, keep the run (the last KEPT_RUNS), audit it and commit."""
    checks = run_all()
    run = PreflightRun(actor_type=actor_type, actor=actor, results=[asdict(c) for c in checks],
                       failures=sum(c.status == Status.FAILURE for c in checks),
                       warnings=sum(c.status == Status.WARNING for c in checks))
    db.session.add(run)
    record("preflight.run", actor_type=actor_type, actor=actor,
           outcome="error" if run.failures else "success", failures=run.failures,
           warnings=run.warnings, failed=[c.name for c in checks if c.status == Status.FAILURE])
    db.session.flush()
    keep = sa.select(PreflightRun.id).order_by(PreflightRun.id.desc()).limit(KEPT_RUNS)
    db.session.execute(sa.delete(PreflightRun).where(PreflightRun.id.not_in(keep)))
    db.session.commit()
    return run


def last_run() -> PreflightRun | None:
    """The newest run, or None when the preflight never ran; reads only."""
    return db.session.scalar(sa.select(PreflightRun).order_by(PreflightRun.id.desc()).limit(1))
