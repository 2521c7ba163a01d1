"""one active device per QR code and serial number

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

"""
from alembic import op
import sqlalchemy as sa

import portal.database  # noqa: F401  (UTCDateTime)


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ACTIVE = "state IN ('provisioning', 'enrolled')"


def upgrade():
    op.create_index("uq_devices_active_serial", "devices", ["qr_code_id", "serial_number"],
                    unique=True, sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))


def downgrade():
    op.drop_index("uq_devices_active_serial", table_name="devices")
