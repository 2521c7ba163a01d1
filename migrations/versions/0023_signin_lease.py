"""Android Management API: a lease so that one process at a time changes the sign-in details

Revision ID: 0023_signin_lease
Revises: 0022_webhook_rotation
Create Date: 2026-12-05

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0023_signin_lease'
down_revision = '0022_webhook_rotation'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('amapi_settings') as batch:
        batch.add_column(sa.Column('signin_lock_holder', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('signin_lock_until', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('amapi_settings') as batch:
        batch.drop_column('signin_lock_until')
        batch.drop_column('signin_lock_holder')
