"""Devices → Devices: indexes for the list by state and its search by prefix

Revision ID: 0011_devices
Revises: 0010_pending
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_devices'
down_revision = '0010_pending'
branch_labels = None
depends_on = None

# (column, expression, index): lower-case copies kept by the database (PostgreSQL: stored;
# SQLite: virtual), indexed with text_pattern_ops on PostgreSQL so that LIKE 'abc%' uses them.
KEYS = (('serial_key', 'lower(serial_number)', 'ix_devices_serial_key'),
        ('model_key', 'lower(model)', 'ix_devices_model_key'))


def upgrade():
    op.create_index('ix_devices_state_created_at_id', 'devices',
                    ['state', 'created_at', 'id'], unique=False)
    for column, expression, index in KEYS:
        op.add_column('devices', sa.Column(column, sa.String(length=64),
                                           sa.Computed(expression), nullable=True))
        op.create_index(index, 'devices', [column], unique=False,
                        postgresql_ops={column: 'text_pattern_ops'})


def downgrade():
    for column, _, index in KEYS:
        op.drop_index(index, table_name='devices')
        op.drop_column('devices', column)
    op.drop_index('ix_devices_state_created_at_id', table_name='devices')
