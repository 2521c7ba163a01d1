"""The single license pool row; its counters are changed only by conditional updates."""
import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import db


class LicensePool(db.Model):
    """used = devices holding a license (provisioning or enrolled); reserved = live pending
    enrollments. The CHECK makes `remaining = total - used - reserved` impossible to drive
    below zero, whatever runs at the same time."""

    __tablename__ = "license_pool"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="singleton"),
        sa.CheckConstraint("total >= 0", name="total_not_negative"),
        sa.CheckConstraint("used >= 0", name="used_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        sa.CheckConstraint("used + reserved <= total", name="not_overspent"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    total: so.Mapped[int] = so.mapped_column(default=0)
    used: so.Mapped[int] = so.mapped_column(default=0)
    reserved: so.Mapped[int] = so.mapped_column(default=0)

    @property
    def remaining(self) -> int:
        return self.total - self.used - self.reserved
