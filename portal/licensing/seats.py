"""Reading and setting the license pool; reservations are conditional updates."""
from dataclasses import dataclass

import sqlalchemy as sa

from portal.audit.log import record
from portal.database import db, read_once
from portal.errors import DomainError
from portal.licensing.models import LicensePool


class LicenseError(DomainError):
    """The license total cannot be set so; the message says why."""


@dataclass(frozen=True)
class Figures:
    total: int
    used: int
    reserved: int

    @property
    def remaining(self) -> int:
        return self.total - self.used - self.reserved


def _pool() -> LicensePool:
    pool = db.session.get(LicensePool, 1)
    if pool is None:  # the migration seeds it; tests that build with create_all may not
        pool = LicensePool(id=1, total=0, used=0, reserved=0)
        db.session.add(pool)
        db.session.flush()
    return pool


@read_once
def figures(released: sa.ColumnElement[int] | None = None) -> Figures:
    """The four license figures as the database holds them now; a pure read.

    `released`, an SQL count of reservations to show as given back (never below 0 reserved),
    is read in the same statement, so it and the pool come from one snapshot."""
    released = sa.literal(0) if released is None else released
    row = db.session.execute(sa.select(LicensePool.total, LicensePool.used, LicensePool.reserved,
                                       released).where(LicensePool.id == 1)).first()
    if row is None:
        return Figures(0, 0, 0)
    total, used, reserved, freed = row
    return Figures(total, used, max(reserved - freed, 0))


def set_total(total: int, *, actor_type: str = "operator", actor: str = "operator") -> Figures:
    """Set the number of licenses; refused (nothing written) below what is used and reserved."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise LicenseError("The number of licenses must be a whole number, 0 or more.")
    if total > 10_000_000:
        raise LicenseError("The number of licenses must be at most 10,000,000.")
    _pool()
    # Conditional update: a device enrolling at this moment cannot slip under the new total.
    result = db.session.execute(
        sa.update(LicensePool).where(LicensePool.id == 1,
                                     LicensePool.used + LicensePool.reserved <= total)
        .values(total=total))
    if result.rowcount != 1:
        current = figures()
        db.session.rollback()
        raise LicenseError(f"Cannot set {total} licenses: {current.used} are used and "
                           f"{current.reserved} reserved, so at least "
                           f"{current.used + current.reserved} are needed.")
    record("licenses.set", actor_type=actor_type, actor=actor, total=total)
    db.session.commit()
    return figures()


def reserve(n: int) -> bool:
    """Reserve n licenses in the caller's transaction; False (nothing changed) if too few remain."""
    result = db.session.execute(
        sa.update(LicensePool)
        .where(LicensePool.id == 1,
               LicensePool.total - LicensePool.used - LicensePool.reserved >= n)
        .values(reserved=LicensePool.reserved + n))
    return result.rowcount == 1


def release_reserved(n: int) -> None:
    """Give n reserved licenses back to the pool, in the caller's transaction."""
    db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1)
                       .values(reserved=LicensePool.reserved - n))
