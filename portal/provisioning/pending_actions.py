"""One QR code's pending enrollments, changed one by one from View OTP and the Pending list:
Reset OTP, Delete one pending enrollment, Extend the OTP's expiry, Mail again.

Each runs in one transaction and is audited (never with the OTP). Expired reservations are
written as expired first, so "pending" below always means still waiting and still valid:
Reset OTP and Extend move only those, and never revive an expired one (its license went back
to the pool when it expired).

Android Device Policy (issue 17): the "OTP" is Google's enrollment token. Reset OTP asks Google
for a new token (before the transaction; a refusal changes nothing) and owes the old one's
deletion; Extend is refused, since Google cannot extend a token."""
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal import otp as otps
from portal import vault
from portal.accounts.models import AdminUser
from portal.amapi.client import AmapiError
from portal.amapi.tasks import owe
from portal.android.payload import PREFIX, encode_payload
from portal.android.qr import qr_version
from portal.audit.log import record
from portal.database import db, end_transaction, utcnow
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.enrollment.pending import end_one_pending, expire_due, pay_google_soon
from portal.errors import WHOLE, DomainError
from portal.mail.outbox import queue_for_qr_code
from portal.provisioning import device_policy
from portal.settings import otp_policy
from portal.vocabulary import AdminRole, AmapiTaskKind, EnrollmentOption, Management, PendingState

EXTRAS = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
MAX_HOURS = otp_policy.MAX_VALIDITY_HOURS
NO_EXTEND_AT_GOOGLE = ("Google cannot extend an enrollment token: this Android Device Policy QR "
                       "code keeps the expiry its token was given. Reset OTP asks Google for a "
                       "new token (with the OTP defaults' validity), or create a new QR code.")
NOTHING_WAITING = ("No pending enrollment of this QR code is waiting (the expired ones returned "
                   "their licenses): create a new QR code instead.")
RESET_MEANWHILE = "The OTP was just reset by someone else; showing the new one."
UNITS = {"hours": 1, "days": 24}


class PendingActionError(DomainError):
    """The action cannot be done; .errors maps the form's fields (or WHOLE) to messages."""


class ResetMeanwhile(PendingActionError):
    """Someone else's Reset OTP replaced the token first; this one's was given back. .otp is
    the token now in force, to show instead."""

    def __init__(self, otp: str):
        super().__init__({WHOLE: RESET_MEANWHILE})
        self.otp = otp


@dataclass(frozen=True)
class Extension:
    amount: int | None       # None with unlimited
    unit: str = "hours"      # a key of UNITS
    unlimited: bool = False


def _actor(admin: AdminUser) -> dict:
    return {"actor_type": "admin", "actor": admin.username}


def _check_open(qr_code: QrCode, action: str) -> None:
    if qr_code.option != EnrollmentOption.AUTO:
        raise PendingActionError({WHOLE: "A Self Service Portal QR code has no OTP and no "
                                         "pending enrollments."})
    if qr_code.is_revoked:
        raise PendingActionError({WHOLE: f"This QR code is revoked: {action} is not possible. "
                                         "Create a new QR code instead."})


def _move_pending(qr_code: QrCode, expires_at: datetime | None) -> int:
    """Give the QR's waiting pending enrollments this expiry; how many there were."""
    result = db.session.execute(
        sa.update(PendingEnrollment)
        .where(PendingEnrollment.qr_code_id == qr_code.id,
               PendingEnrollment.state == PendingState.PENDING)
        .values(expires_at=expires_at).execution_options(synchronize_session=False))
    return result.rowcount


def reset_otp(qr_code: QrCode, *, reset_by: AdminUser) -> str:
    """A new OTP and a new expiry (the OTP policy's) for an automatic QR code: the old OTP
    stops working at once, and the payload is rebuilt with the new one, so the QR code
    printed, downloaded or mailed before no longer works. Returns the new OTP. Raises
    ResetMeanwhile (with the OTP in force) when another reset changed it after it was read."""
    _check_open(qr_code, "Reset OTP")
    if qr_code.management == Management.ADP:
        return _reset_google_token(qr_code, reset_by=reset_by)
    before, old_hash, frozen = qr_code.otp_expires_at, qr_code.otp_hash, qr_code.payload_text()
    expire_due()
    policy, now = otp_policy.current(), utcnow()
    otp = otps.for_qr_code()
    text = _payload_with_otp(frozen, otp)
    expires_at = otps.expires_at(policy.validity_hours, now)
    # Only if the OTP read is still the one in force: of two resets at once one wins, the
    # other is shown the winner's OTP (the one it made would never work).
    swapped = db.session.execute(
        sa.update(QrCode)
        .where(QrCode.id == qr_code.id, QrCode.revoked_at.is_(None),
               QrCode.otp_hash == old_hash)
        .values(otp_enc=vault.encrypt(otp), otp_hash=otps.keyed_hash(otp),
                otp_expires_at=expires_at, payload_enc=vault.encrypt(text),
                qr_version=qr_version(text))
        .execution_options(synchronize_session=False)).rowcount == 1
    if not swapped:
        db.session.rollback()
        _lost_the_race(qr_code, reset_by)
    moved = _move_pending(qr_code, expires_at)
    record("qr_code.reset_otp", **_actor(reset_by), target=qr_code.public_id,
           expires_before=_iso(before), expires_after=_iso(expires_at), pending=moved)
    db.session.commit()
    db.session.refresh(qr_code)
    return otp


def _waiting(qr_code: QrCode) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(
        PendingEnrollment.qr_code_id == qr_code.id,
        PendingEnrollment.state == PendingState.PENDING))


def _reset_google_token(qr_code: QrCode, *, reset_by: AdminUser) -> str:
    """Reset OTP of an Android Device Policy QR code: a new enrollment token from Google for
    the waiting pending enrollments (oneTimeOnly when one waits), the payload rebuilt with it,
    the old token's deletion owed in the same transaction and tried after the commit.

    Google is asked outside any transaction (SQLite's write lock is not held across the call),
    and the new token replaces the one read before only if that one is still in place (a
    conditional UPDATE): of two resets at the same instant one wins; the other gives its token
    back (deleted at Google now, or owed) and raises ResetMeanwhile with the winner's."""
    expire_due()
    waiting = _waiting(qr_code)
    if not waiting:
        raise PendingActionError({WHOLE: NOTHING_WAITING})
    hours, now = otp_policy.current().validity_hours, utcnow()
    old_token, frozen = qr_code.enrollment_token_name, qr_code.payload_text()
    before, public_id, user = qr_code.otp_expires_at, qr_code.public_id, qr_code.user
    try:
        connection = device_policy.connection()
        if user is not None:
            user.id  # noqa: B018  (read now: the token names the user by id)
        end_transaction()  # only read so far; kept as read, so nothing is read again
        google = device_policy.obtain(EnrollmentOption.AUTO, public_id, user=user,
                                      usage_count=waiting, validity_hours=hours,
                                      server_url="", connection=connection)
    except AmapiError as error:
        raise PendingActionError({WHOLE: error.message}) from None
    try:
        text = _payload_with_google_token(frozen, google)
        expires_at = otps.expires_at(hours, now)
        swapped = db.session.execute(
            sa.update(QrCode)
            .where(QrCode.id == qr_code.id, QrCode.revoked_at.is_(None),
                   QrCode.enrollment_token_name == old_token)  # None: IS NULL
            .values(otp_enc=vault.encrypt(google.token_value),
                    otp_hash=otps.keyed_hash(google.token_value),
                    enrollment_token_name=google.token_name, otp_expires_at=expires_at,
                    payload_enc=vault.encrypt(text), qr_version=qr_version(text))
            .execution_options(synchronize_session=False)).rowcount == 1
        if swapped:
            moved = _move_pending(qr_code, expires_at)
            if old_token:
                owe(AmapiTaskKind.DELETE_TOKEN, old_token, qr_code_id=qr_code.id)
            record("qr_code.reset_otp", **_actor(reset_by), target=qr_code.public_id,
                   expires_before=_iso(before), expires_after=_iso(expires_at),
                   pending=moved, enrollment_token=google.token_name)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        device_policy.give_back(google)
        raise
    if not swapped:
        device_policy.give_back(google)
        _lost_the_race(qr_code, reset_by)
    db.session.refresh(qr_code)
    pay_google_soon([qr_code.id])
    return google.token_value


def _lost_the_race(qr_code: QrCode, reset_by: AdminUser) -> None:
    """Another Reset OTP (or a Revoke) changed the QR code after this one read it (while Google
    made its token, for Android Device Policy): say so, and show the token now in force (a view of it, audited as View OTP is)."""
    db.session.refresh(qr_code)
    if qr_code.is_revoked:
        raise PendingActionError({WHOLE: "This QR code was revoked a moment ago: Reset OTP is "
                                         "not possible. Create a new QR code instead."})
    record("qr_code.view_otp", **_actor(reset_by), target=qr_code.public_id)
    db.session.commit()
    raise ResetMeanwhile(vault.decrypt(qr_code.otp_enc))


def _payload_with_google_token(text: str, google) -> str:
    """The frozen payload with Google's parts (Android Device Policy and the admin extras
    bundle that carries the token) of the new token; our network and locale stay."""
    payload = json.loads(text)
    dpc, extras, _ = google.parts()
    for key, value in zip(("COMPONENT_NAME", "PACKAGE_DOWNLOAD_LOCATION", "SIGNATURE_CHECKSUM"),
                          (dpc.component_name, dpc.download_url, dpc.signature_checksum)):
        payload[PREFIX + "PROVISIONING_DEVICE_ADMIN_" + key] = value
    payload[EXTRAS] = extras
    return encode_payload(payload)


def _payload_with_otp(text: str, otp: str) -> str:
    """The frozen payload with only its OTP replaced (the Companion settings and everything
    else stay as they were when the QR code was created)."""
    payload = json.loads(text)
    payload[EXTRAS]["otp"] = otp
    return encode_payload(payload)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "unlimited"


def delete_pending(qr_code: QrCode, pending_id: int, *, deleted_by: AdminUser) -> None:
    """End one unused pending enrollment of the QR code (state revoked) and return its
    license, in one conditional UPDATE: a device redeeming it at the same moment either got
    it first (then this refuses) or finds it gone."""
    _check_administrator(deleted_by)
    expire_due()
    if not end_one_pending(qr_code.id, pending_id):
        db.session.rollback()
        raise PendingActionError({WHOLE: _not_pending_message(qr_code, pending_id)})
    record("pending.delete", **_actor(deleted_by), target=qr_code.public_id,
           pending_id=pending_id, released=1)
    # Android Device Policy: the last one waiting was deleted, so Google's token must go too
    # (or a device could still enroll with it, beyond what the portal counts).
    last = qr_code.management == Management.ADP and not _waiting(qr_code)
    if last:
        device_policy.owe_release(qr_code)
    db.session.commit()
    if last:
        pay_google_soon([qr_code.id])


def _not_pending_message(qr_code: QrCode, pending_id: int) -> str:
    pending = db.session.get(PendingEnrollment, pending_id, populate_existing=True)
    if pending is None or pending.qr_code_id != qr_code.id:
        return "This QR code has no such pending enrollment."
    return (f"This pending enrollment is {pending.state} already, so it cannot be deleted; "
            "nothing was changed.")


def _check_administrator(admin: AdminUser) -> None:
    if admin.role != AdminRole.ADMINISTRATOR:
        raise PendingActionError({WHOLE: "Only an Administrator may do this."})


def extension_errors(extension: Extension, admin: AdminUser) -> dict[str, str]:
    """Every problem with an Extend request, by the form's field names."""
    if extension.unlimited:
        if admin.role != AdminRole.ADMINISTRATOR:
            return {"unlimited": "Only an Administrator may define an Unlimited OTP."}
        return {}
    if extension.unit not in UNITS:
        return {"unit": "Choose hours or days."}
    amount, most = extension.amount, MAX_HOURS // UNITS[extension.unit]
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= most:
        return {"amount": f"Enter a whole number from 1 to {most:,} {extension.unit}, "
                          "or tick Unlimited."}
    return {}


def extend_otp(qr_code: QrCode, extension: Extension, *, extended_by: AdminUser) -> int:
    """Give the QR's OTP and its waiting pending enrollments a new expiry, from now (or none:
    Unlimited). Expired ones stay expired. Returns how many pending enrollments moved."""
    _check_administrator(extended_by)
    _check_open(qr_code, "Extend")
    if qr_code.management == Management.ADP:
        raise PendingActionError({WHOLE: NO_EXTEND_AT_GOOGLE})
    errors = extension_errors(extension, extended_by)
    if errors:
        raise PendingActionError(errors)
    expire_due()
    if not _waiting(qr_code):
        raise PendingActionError({WHOLE: NOTHING_WAITING})
    before = qr_code.otp_expires_at
    qr_code.otp_expires_at = None if extension.unlimited else utcnow() + timedelta(
        hours=extension.amount * UNITS[extension.unit])
    moved = _move_pending(qr_code, qr_code.otp_expires_at)
    record("qr_code.extend_otp", **_actor(extended_by), target=qr_code.public_id,
           expires_before=_iso(before), expires_after=_iso(qr_code.otp_expires_at),
           pending=moved)
    db.session.commit()
    return moved


def mail_again(qr_code: QrCode, *, sent_by: AdminUser) -> int:
    """Queue the QR code's mail again, to the same recipients creation would mail now.
    Returns how many messages were queued."""
    if qr_code.is_revoked:
        raise PendingActionError({WHOLE: "This QR code is revoked: it is not mailed again."})
    messages = queue_for_qr_code(qr_code, qr_code.user)
    record("qr_code.mail_again", **_actor(sent_by), target=qr_code.public_id,
           messages=len(messages))
    db.session.commit()
    return len(messages)
