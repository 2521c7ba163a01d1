"""Webhook endpoints: Rotate secret keeps the previous secret signing for a while

Revision ID: 0022_webhook_rotation
Revises: 0021_amapi
Create Date: 2026-12-04

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0022_webhook_rotation'
down_revision = '0021_amapi'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.add_column(sa.Column('previous_secret_enc', sa.Text(), nullable=True))
        batch.add_column(sa.Column('previous_secret_until', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.drop_column('previous_secret_until')
        batch.drop_column('previous_secret_enc')
