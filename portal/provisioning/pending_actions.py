"""One QR code's pending enrollments, changed one by one from View OTP and the Pending list:
Reset OTP, Delete one pending enrollment, Extend the OTP's expiry, Mail again.

Each runs in one transaction and is audited (never with the OTP). Expired reservations are
written as expired first, so "pending" below always means still waiting and still valid:
Reset OTP and Extend move only those, and never revive an expired one (its license went back
to the pool when it expired)."""
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal import otp as otps
from portal import vault
from portal.accounts.models import AdminUser
from portal.android.payload import PREFIX, encode_payload
from portal.android.qr import qr_version
from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.enrollment.pending import end_one_pending, expire_due
from portal.errors import WHOLE, DomainError
from portal.mail.outbox import queue_for_qr_code
from portal.settings import otp_policy
from portal.vocabulary import AdminRole, EnrollmentOption, PendingState

EXTRAS = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
MAX_HOURS = otp_policy.MAX_VALIDITY_HOURS
UNITS = {"hours": 1, "days": 24}


class PendingActionError(DomainError):
    """The action cannot be done; .errors maps the form's fields (or WHOLE) to messages."""


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
    printed, downloaded or mailed before no longer works. Returns the new OTP."""
    _check_open(qr_code, "Reset OTP")
    expire_due()
    policy, now = otp_policy.current(), utcnow()
    otp = otps.for_qr_code()
    text = _payload_with_otp(qr_code.payload_text(), otp)
    before = qr_code.otp_expires_at
    qr_code.otp_enc, qr_code.otp_hash = vault.encrypt(otp), otps.keyed_hash(otp)
    qr_code.otp_expires_at = otps.expires_at(policy.validity_hours, now)
    qr_code.payload_enc, qr_code.qr_version = vault.encrypt(text), qr_version(text)
    moved = _move_pending(qr_code, qr_code.otp_expires_at)
    record("qr_code.reset_otp", **_actor(reset_by), target=qr_code.public_id,
           expires_before=_iso(before), expires_after=_iso(qr_code.otp_expires_at),
           pending=moved)
    db.session.commit()
    return otp


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
    db.session.commit()


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
    errors = extension_errors(extension, extended_by)
    if errors:
        raise PendingActionError(errors)
    expire_due()
    waiting = db.session.scalar(sa.select(sa.func.count()).where(
        PendingEnrollment.qr_code_id == qr_code.id,
        PendingEnrollment.state == PendingState.PENDING))
    if not waiting:
        raise PendingActionError({WHOLE: "No pending enrollment of this QR code is waiting "
                                         "(the expired ones returned their licenses): create a "
                                         "new QR code instead."})
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
