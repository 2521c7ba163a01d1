"""Two-step sign-in for admins: a TOTP code (RFC 6238) after the password, or a recovery code.

The shared secret is stored encrypted (vault.encrypt), recovery codes as keyed hashes. A code
is accepted once: the admin's last accepted time step is kept, and a code of that step or an
earlier one is refused, so a code seen over someone's shoulder cannot be used again.
"""
import io
import secrets
import time

import pyotp
import qrcode
import qrcode.image.svg
import sqlalchemy as sa

from portal import vault
from portal.accounts.errors import AccountError
from portal.accounts.models import AdminUser, RecoveryCode
from portal.audit.log import record
from portal.database import db, utcnow

ISSUER = "QR-Code Provisioning"
RECOVERY_CODES = 10
RECOVERY_PURPOSE = "admin-recovery-code"
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read and typed
VALID_WINDOW = 1  # one step (30 s) either side, for clocks that drift a little


class TwoStepError(AccountError):
    """A two-step change the admin must correct (a wrong code, a wrong password)."""


def new_secret() -> str:
    return pyotp.random_base32()


def authenticator_uri(secret: str, username: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of the address as inline SVG, drawn here (no outside service sees it)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg"):]  # inline: without the XML declaration


def is_on(admin: AdminUser) -> bool:
    return admin.totp_secret_enc is not None


def remaining_recovery_codes(admin: AdminUser) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.admin_id == admin.id, RecoveryCode.used_at.is_(None)))


def _accepted_step(secret: str, code: str, now: float) -> int | None:
    """The time step the code belongs to (within the window), or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp, step = pyotp.TOTP(secret), int(now) // 30
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.at(candidate * 30), code):
            return candidate
    return None


def _use_step(admin: AdminUser, step: int) -> bool:
    """Keep the step as the last one used; False when it (or a later one) was used already.
    One UPDATE, so two requests racing with the same code cannot both pass."""
    result = db.session.execute(
        sa.update(AdminUser).where(AdminUser.id == admin.id, sa.or_(
            AdminUser.totp_last_step.is_(None), AdminUser.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    admin.totp_last_step = step
    return True


def check_code(admin: AdminUser, code: str, *, now: float | None = None) -> bool:
    """Whether the code is the admin's current TOTP code, not used before (then it is spent)."""
    if not is_on(admin):
        return False
    step = _accepted_step(vault.decrypt(admin.totp_secret_enc), code or "",
                          time.time() if now is None else now)
    return step is not None and _use_step(admin, step)


def _normalized(code: str) -> str:
    return "".join(char for char in (code or "").lower() if char.isalnum())


def _new_recovery_codes(admin: AdminUser) -> list[str]:
    """Replace the admin's recovery codes with new ones; the codes are returned only here."""
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.admin_id == admin.id))
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
             for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(admin_id=admin.id,
                                    code_hash=vault.lookup_hash(code, RECOVERY_PURPOSE))
                       for code in codes)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def use_recovery_code(admin: AdminUser, code: str) -> bool:
    """Whether the code is one of the admin's unused recovery codes (then it is spent)."""
    code = _normalized(code)
    if len(code) != 10:
        return False
    unused = db.session.execute(sa.select(RecoveryCode.id, RecoveryCode.code_hash).where(
        RecoveryCode.admin_id == admin.id, RecoveryCode.used_at.is_(None))).all()
    found = None
    for row in unused:  # compare with every one, in constant time each
        if vault.matches(code, row.code_hash, RECOVERY_PURPOSE):
            found = row.id
    if found is None:
        return False
    spent = db.session.execute(sa.update(RecoveryCode).where(
        RecoveryCode.id == found, RecoveryCode.used_at.is_(None)).values(used_at=utcnow()))
    return spent.rowcount == 1


def turn_on(admin: AdminUser, secret: str, code: str, *, client_address: str | None = None,
            now: float | None = None) -> list[str]:
    """Turn two-step sign-in on with the secret the admin's app shows `code` for; returns the
    recovery codes (shown once). Raises TwoStepError, nothing written, on a wrong code."""
    step = _accepted_step(secret, code or "", time.time() if now is None else now)
    if step is None:
        raise TwoStepError({"code": "This is not the code your app shows now. Check the "
                                    "phone's time and type the 6 digits again."})
    admin.totp_secret_enc = vault.encrypt(secret)
    admin.totp_enabled_at = utcnow()
    admin.totp_last_step = step
    codes = _new_recovery_codes(admin)
    record("admin.totp_on", actor_type="admin", actor=admin.username, target=admin.username,
           client_address=client_address)
    db.session.commit()
    return codes


def _check_password_or_code(admin: AdminUser, answer: str) -> None:
    if not (admin.check_password(answer or "") or check_code(admin, answer or "")):
        db.session.commit()  # a code that matched is spent even so
        raise TwoStepError({"confirmation": "This is neither your password nor the code "
                                            "your app shows now."})


def turn_off(admin: AdminUser, answer: str, *, client_address: str | None = None) -> None:
    """Turn two-step sign-in off, confirmed by the admin's password or a current code."""
    _check_password_or_code(admin, answer)
    reset(admin, actor=admin.username, client_address=client_address)


def reset(admin: AdminUser, *, actor: str, actor_type: str = "admin",
          client_address: str | None = None) -> None:
    """Two-step sign-in off for the admin, without asking: for an admin who lost both the
    phone and the recovery codes (by an Administrator or `flask`). Audited; commits."""
    admin.totp_secret_enc = admin.totp_enabled_at = admin.totp_last_step = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.admin_id == admin.id))
    record("admin.totp_off", actor_type=actor_type, actor=actor, target=admin.username,
           client_address=client_address)
    db.session.commit()


def renew_recovery_codes(admin: AdminUser, answer: str, *,
                         client_address: str | None = None) -> list[str]:
    """New recovery codes (the old ones stop working), confirmed like turn_off."""
    if not is_on(admin):
        raise TwoStepError({"confirmation": "Turn on two-step sign-in first."})
    _check_password_or_code(admin, answer)
    codes = _new_recovery_codes(admin)
    record("admin.recovery_codes_new", actor_type="admin", actor=admin.username,
           target=admin.username, client_address=client_address)
    db.session.commit()
    return codes


def verify_sign_in(admin: AdminUser, answer: str, *, client_address: str | None = None) -> bool:
    """The sign-in's second step: a current code or an unused recovery code. Audited either
    way (never the code); commits."""
    if check_code(admin, answer):
        record("admin.sign_in_code", actor_type="admin", actor=admin.username,
               client_address=client_address)
    elif use_recovery_code(admin, answer):
        record("admin.recovery_code_used", actor_type="admin", actor=admin.username,
               client_address=client_address, remaining=remaining_recovery_codes(admin))
    else:
        record("admin.sign_in_code", actor_type="admin", actor=admin.username,
               outcome="refused", code="invalid_totp", client_address=client_address)
        db.session.commit()
        return False
    admin.last_login_at = utcnow()
    db.session.commit()
    return True
