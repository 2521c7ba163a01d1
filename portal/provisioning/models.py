"""A bulk batch's rows between its preview and the QR codes made from them."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow


class StagedBatch(db.Model):
    """The checked rows of a previewed CSV (or Admin API rows): no QR code and no license yet.
    Confirm links it to its Batch; the batch's one insert transaction deletes it."""

    __tablename__ = "staged_batches"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    name: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    network_profile_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("network_profiles.id", ondelete="CASCADE"))
    otp_validity: so.Mapped[str | None] = so.mapped_column(sa.String(10))  # hours or "unlimited"
    rows_json: so.Mapped[str] = so.mapped_column(sa.Text)
    row_count: so.Mapped[int] = so.mapped_column(default=0)
    total: so.Mapped[int] = so.mapped_column(default=0)     # the licenses the rows reserve
    created_by_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("admin_users.id", ondelete="CASCADE"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    batch_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("batches.id", ondelete="CASCADE"), unique=True)

    def __repr__(self) -> str:
        return f"<StagedBatch {self.public_id} {self.row_count} rows>"
