"""Regenerate: a new QR code in place of one made with an older Companion (stale), with the
same settings, user, waiting pending enrollments and expiry; the old one is revoked in the
same transaction and its reserved licenses move to the new one (never reserved twice)."""
import json
import secrets

import sqlalchemy as sa

from portal import otp as otps
from portal import vault
from portal.accounts.models import AdminUser
from portal.android.payload import (MAX_PAYLOAD_BYTES, PREFIX, CompanionConfig, encode_payload,
                                    payload_bytes, validate_companion)
from portal.android.qr import qr_version
from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.enrollment import webhook_events
from portal.enrollment.pending import expire_due
from portal.errors import WHOLE, DomainError
from portal.mail.outbox import queue_for_qr_code
from portal.settings import companion
from portal.vocabulary import EnrollmentOption, Management, PendingState

EXTRAS = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
LEAVE_APPS = PREFIX + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED"
_COMPANION_KEYS = {"component_name": PREFIX + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME",
                   "download_url": PREFIX + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION",
                   "signature_checksum": PREFIX + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"}
# What the new QR code gets afresh; every other column (network, user, name, expiry, and any
# setting added later) is copied, so "the same settings" needs no list to keep up to date.
_FRESH = frozenset({"id", "public_id", "created_at", "created_by_id", "revoked_at",
                    "revoked_by_id", "otp_enc", "otp_hash", "payload_enc", "qr_version",
                    "usage_count", "companion_component", "companion_checksum"})
TAKEN = ("This QR code was revoked or regenerated a moment ago (by another admin?): nothing "
         "was changed. Its successor, if any, is at the top of the Pending list.")


NOT_FOR_GOOGLE = ("An Android Device Policy QR code names no Companion, so it never goes stale: "
                  "there is nothing to regenerate. Reset OTP gives it a new enrollment token.")


class RegenerateError(DomainError):
    """The QR code cannot be regenerated; nothing was written."""


def regenerate_qr_code(qr_code: QrCode, *, regenerated_by: AdminUser, server_url: str,
                       mail: bool = False) -> QrCode:
    """Make the new QR code and revoke the old one in one transaction. Automatic Provisioning:
    the new one gets a new OTP and as many pending enrollments as the old one had waiting
    (its Usage Count), each with its expiry; their licenses stay reserved. The QR code's mail
    is queued again only when `mail`. Raises RegenerateError (TAKEN when another admin
    revoked or regenerated it first; no pending enrollment waiting; the Companion unset)."""
    if qr_code.management == Management.ADP:
        raise RegenerateError(NOT_FOR_GOOGLE)
    config = companion.current()
    if config is None or validate_companion(config):
        raise RegenerateError("The Companion settings are missing or not valid: fix them "
                              "under Admin → Companion first.")
    expire_due()  # commits: below, "pending" means waiting and valid
    auto = qr_code.option == EnrollmentOption.AUTO
    otp = otps.for_qr_code() if auto else None
    new = QrCode(public_id=secrets.token_urlsafe(9), created_at=utcnow(),
                 created_by_id=regenerated_by.id,
                 **{column.key: getattr(qr_code, column.key)
                    for column in sa.inspect(QrCode).column_attrs if column.key not in _FRESH},
                 **QrCode.companion_values(config))
    text = _new_payload(qr_code.payload_text(), config, server_url, new.public_id, otp)
    new.payload_enc, new.qr_version = vault.encrypt(text), qr_version(text)
    if otp is not None:
        new.otp_enc, new.otp_hash = vault.encrypt(otp), otps.keyed_hash(otp)
    expiries = _revoke_moving_pending(qr_code, regenerated_by, new.created_at)
    if auto and not expiries:
        db.session.rollback()
        raise RegenerateError({WHOLE: "No pending enrollment of this QR code is waiting (all "
                                      "used, expired or deleted): create a new QR code."})
    new.usage_count = len(expiries) if auto else None
    db.session.add(new)
    db.session.flush()
    if expiries:
        db.session.execute(sa.insert(PendingEnrollment), [
            {"qr_code_id": new.id, "state": PendingState.PENDING, "expires_at": expires_at,
             "created_at": new.created_at} for expires_at in expiries])
    if mail:
        queue_for_qr_code(new, new.user)
    _audit(qr_code, new, regenerated_by, len(expiries), mail)
    db.session.commit()
    db.session.refresh(qr_code)
    return new


def _revoke_moving_pending(qr_code: QrCode, admin: AdminUser, now) -> list:
    """Revoke the old QR code (the conditional UPDATE two admins race on: one wins, the other
    gets TAKEN) and end its waiting pending enrollments without releasing their licenses (the
    new QR code's take them over). Returns the ended ones' expiries."""
    marked = db.session.execute(
        sa.update(QrCode).where(QrCode.id == qr_code.id, QrCode.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by_id=admin.id)
        .execution_options(synchronize_session=False))
    if marked.rowcount != 1:
        db.session.rollback()
        raise RegenerateError({WHOLE: TAKEN})
    return list(db.session.scalars(
        sa.update(PendingEnrollment)
        .where(PendingEnrollment.qr_code_id == qr_code.id,
               PendingEnrollment.state == PendingState.PENDING)
        .values(state=PendingState.REVOKED, ended_at=now)
        .returning(PendingEnrollment.expires_at)
        .execution_options(synchronize_session=False)))


def _new_payload(text: str, config: CompanionConfig, server_url: str, qr_id: str,
                 otp: str | None) -> str:
    """The old payload with today's Companion, server URL, a new qr_id and OTP; everything
    else (network, locale, user, options) as it was."""
    payload = json.loads(text)
    extras = payload.pop(EXTRAS)
    payload.pop(LEAVE_APPS, None)
    for field, key in _COMPANION_KEYS.items():
        payload[key] = getattr(config, field)
    payload[_COMPANION_KEYS["signature_checksum"]] = config.signature_checksum.rstrip("=")
    if config.leave_system_apps_enabled:
        payload[LEAVE_APPS] = True
    extras.update(server_url=server_url.rstrip("/"), qr_id=qr_id)
    if otp is not None:
        extras["otp"] = otp
    payload[EXTRAS] = extras
    new_text = encode_payload(payload)
    if payload_bytes(new_text) > MAX_PAYLOAD_BYTES:
        raise RegenerateError({WHOLE: "With today's Companion settings this QR code's payload "
                                      f"would pass {MAX_PAYLOAD_BYTES} bytes: shorten the "
                                      "Companion's download URL, or create a new QR code."})
    return new_text


def _audit(old: QrCode, new: QrCode, admin: AdminUser, moved: int, mail: bool) -> None:
    actor = {"actor_type": "admin", "actor": admin.username}
    record("qr_code.regenerate", **actor, target=new.public_id, replaces=old.public_id,
           option=new.option, usage_count=new.usage_count, licenses_moved=moved,
           companion_component=new.companion_component, mail_again=mail)
    record("qr_code.revoke", **actor, target=old.public_id, released=0,
           regenerated_as=new.public_id)
    webhook_events.qr_code_revoked(old, revoked_by=admin.username, released=0,
                                   regenerated_as=new.public_id)
