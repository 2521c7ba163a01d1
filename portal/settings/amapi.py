"""Admin → Android Management API: the enterprise, the service-account key (stored encrypted,
never shown again: only its account and key id), the policy of each enrollment option, the
Pub/Sub push account, and "Test connection" with values saved or not.

It lives in portal.settings, beside the other settings pages, because it records audit events
and portal.amapi (a sibling of portal.audit) may not."""
import re
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from portal import vault
from portal.amapi import calls
from portal.amapi.client import AmapiError, current, is_configured, parse_key
from portal.amapi.models import AmapiSettings
from portal.audit.log import record
from portal.audit.models import AuditEvent
from portal.database import db, end_transaction, save_singleton, utcnow
from portal.settings.errors import SettingsError
from portal.vocabulary import EnrollmentOption

# Where Google's Pub/Sub pushes the enterprise's notifications (portal.api serves it); the
# push subscription's audience is the same URL.
PUSH_PATH = "/api/amapi/notifications"
KEY_MAX_BYTES = 64 * 1024  # a service-account key file is about 2.3 KB
_ENTERPRISE_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_POLICY_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
# Service accounts' addresses: name@project.iam.gserviceaccount.com, and Google's own
# (…@developer.gserviceaccount.com, …@gcp-sa-pubsub.iam.gserviceaccount.com).
_SERVICE_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}@([a-z0-9-]+\.)*gserviceaccount\.com",
                              re.IGNORECASE)
POLICY_FIELDS = {"policy_ssp": "Self Service Portal", "policy_auto": "Automatic Provisioning"}


def option_key(field: str) -> str:
    """The enrollment option (EnrollmentOption's value) whose policy a field holds."""
    return EnrollmentOption.SSP if field == "policy_ssp" else EnrollmentOption.AUTO


class AmapiSettingsError(SettingsError):
    """The Android Management API settings cannot be saved."""


@dataclass
class AmapiValues:
    """What the page submits. key_text None keeps the saved key; remove_key drops it."""
    enterprise: str = ""
    key_text: str | None = None
    remove_key: bool = False
    policy_ssp: str = ""
    policy_auto: str = ""
    push_email: str = ""


@dataclass(frozen=True)
class _Checked:
    enterprise_name: str
    policy_ssp: str | None
    policy_auto: str | None
    push_email: str | None


def enterprise_name(text: str) -> str | None:
    """"enterprises/<id>" from what the admin typed (the name, or the bare id); None when it is
    neither."""
    text = (text or "").strip()
    ident = text.removeprefix("enterprises/")
    return f"enterprises/{ident}" if _ENTERPRISE_ID.fullmatch(ident) else None


def validate(values: AmapiValues, in_use: Collection[str] = ()) -> dict[str, str]:
    """Every reason these values cannot be saved, by field; {} when they can. A key given is
    read as Google's libraries read it; without one the saved key is kept (or removed).
    in_use: the enrollment options of Android Device Policy QR codes not revoked, whose
    policy may not be removed (a Self Service sign-in makes its token with it)."""
    errors = _value_errors(values)[0]
    for field, option in POLICY_FIELDS.items():
        if option_key(field) in in_use and not (getattr(values, field) or "").strip():
            errors.setdefault(field, f"Android Device Policy QR codes of {option} are in use "
                                     "(not revoked): they need this policy. Revoke them first "
                                     "to remove it.")
    if values.key_text is not None:
        if message := _key_error(values.key_text):
            errors["key"] = message
    elif not values.remove_key and not (current() and current().key_enc):
        errors["key"] = ("Upload the service-account key (the .json file Google Cloud made "
                         "for the service account), or paste its contents.")
    return errors


def save(values: AmapiValues, *, actor: str, in_use: Collection[str] = ()) -> AmapiSettings:
    """Validate and save the settings, with an audit event that says whether the key was
    replaced (never the key); commits. Raises AmapiSettingsError, nothing written."""
    errors = validate(values, in_use)
    if errors:
        raise AmapiSettingsError(errors)
    checked = _value_errors(values)[1]
    info = parse_key(values.key_text) if values.key_text is not None else None

    def fill(row: AmapiSettings) -> None:
        row.enterprise_name = checked.enterprise_name
        row.policy_ssp, row.policy_auto = checked.policy_ssp, checked.policy_auto
        row.push_email = checked.push_email
        if info is not None:
            row.key_enc = vault.encrypt(values.key_text.strip())
            row.key_email, row.key_id = info["client_email"], info["private_key_id"]
        elif values.remove_key:
            row.key_enc = row.key_email = row.key_id = None
        row.updated_at, row.updated_by = utcnow(), actor
        record("amapi.settings.update", actor_type="admin", actor=actor,
               target=row.enterprise_name, policy_ssp=row.policy_ssp,
               policy_auto=row.policy_auto, push_email=row.push_email,
               key_replaced=info is not None, key_removed=info is None and values.remove_key,
               key_account=row.key_email, key_id=row.key_id)
    return save_singleton(AmapiSettings, fill)


def try_connection(values: AmapiValues, *, actor: str) -> list[calls.Step]:
    """Test connection with the values in the form, saved or not (a key given, else the saved
    one): each step up to the first that fails. Records the outcome and commits."""
    errors, checked = _value_errors(values)
    if errors:
        steps = [calls.Step("settings", "Settings", False, " ".join(errors.values()))]
    else:
        unsaved = _unsaved(values, checked)
        end_transaction()  # only read so far: SQLite's lock is not held while Google answers
        steps = calls.test_connection(unsaved, key_text=values.key_text)
    failed = next((step for step in steps if not step.ok), None)
    record("amapi.test_connection", actor_type="admin", actor=actor,
           outcome="error" if failed else "success",
           target=None if errors else checked.enterprise_name,
           failed=f"{failed.label}: {failed.message}" if failed else None)
    db.session.commit()
    return steps


@dataclass(frozen=True)
class Status:
    """What the page shows about the saved connection."""
    settings: AmapiSettings | None
    configured: bool
    problem: str | None
    last_test: AuditEvent | None


def status() -> Status:
    """The saved connection, what keeps it from working, and the last Test connection."""
    settings = current()
    configured = is_configured(settings)
    if settings is None:
        problem = ("Not set up: Android Device Policy is not offered until you save the "
                   "enterprise, a key and a policy.")
    elif not settings.key_enc:
        problem = ("No service-account key is saved: no Android Device Policy QR code can be "
                   "created, and the portal cannot delete tokens or devices at Google.")
    elif not (settings.policy_ssp and settings.policy_auto):
        missing = POLICY_FIELDS["policy_auto" if settings.policy_ssp else "policy_ssp"]
        problem = (f"No policy for {missing}: Android Device Policy QR codes of that option "
                   "cannot be created.")
    else:
        problem = None
    last_test = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "amapi.test_connection").order_by(AuditEvent.id.desc()).limit(1))
    return Status(settings, configured, problem, last_test)


def _value_errors(values: AmapiValues) -> tuple[dict[str, str], _Checked | None]:
    """The errors of everything but the key, and the values as they are saved."""
    errors = {}
    name = enterprise_name(values.enterprise)
    if not (values.enterprise or "").strip():
        errors["enterprise"] = ("Enter the enterprise's name (enterprises/LC0…), as "
                                "enterprises.create answered it.")
    elif name is None:
        errors["enterprise"] = ("The enterprise's name is enterprises/ followed by its id: "
                                "letters, digits, - and _, at most 100.")
    policies = {}
    for field in POLICY_FIELDS:
        policies[field] = _policy_id(getattr(values, field), name)
        if policies[field] is False:
            errors[field] = ("A policy id (the last part of enterprises/…/policies/…) has "
                             "letters, digits, -, _ and . only, at most 100; a full name must "
                             "be of the enterprise above.")
    if not errors.keys() & POLICY_FIELDS.keys() and not any(policies.values()):
        errors["policy_auto"] = ("Enter the policy of at least one enrollment option: "
                                 "Android Device Policy QR codes apply it.")
    email = (values.push_email or "").strip()
    if email and (len(email) > 255 or not _SERVICE_ACCOUNT.fullmatch(email)):
        errors["push_email"] = ("Enter a service account's address "
                                "(name@project.iam.gserviceaccount.com), or leave it empty.")
    if errors:
        return errors, None
    return {}, _Checked(name, policies["policy_ssp"] or None, policies["policy_auto"] or None,
                        email.lower() or None)


def _policy_id(text: str, enterprise: str | None) -> str | bool:
    """The policy's id ("" for none) from an id or a full name; False when it is neither."""
    text = (text or "").strip()
    if text.startswith("enterprises/"):
        prefix = f"{enterprise}/policies/"
        if enterprise is None or not text.startswith(prefix):
            return False
        text = text.removeprefix(prefix)
    return text if not text or _POLICY_ID.fullmatch(text) else False


def _key_error(text: str) -> str | None:
    if len(text.encode("utf-8", "replace")) > KEY_MAX_BYTES:
        return ("This file is too large for a service-account key (Google's are about "
                "2 KB): upload the .json key file.")
    try:
        parse_key(text)
    except AmapiError as error:
        return error.message
    return None


def _unsaved(values: AmapiValues, checked: _Checked) -> AmapiSettings:
    """The values as AmapiSettings for the test, never added to the session: the saved key
    unless the form gives one (or removes it)."""
    saved = current()
    keep = values.key_text is None and not values.remove_key and saved is not None
    email = saved.key_email if keep else None
    if values.key_text is not None:
        try:
            email = parse_key(values.key_text)["client_email"]
        except AmapiError:
            pass  # the test's first step says why
    return AmapiSettings(enterprise_name=checked.enterprise_name,
                         key_enc=saved.key_enc if keep else None, key_email=email,
                         policy_ssp=checked.policy_ssp, policy_auto=checked.policy_auto,
                         push_email=checked.push_email)
