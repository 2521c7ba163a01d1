"""two-step sign-in and the audit log: the last TOTP step accepted, prefix indexes

Revision ID: 0009_signin
Revises: 0008
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_signin'
down_revision = '0008'
branch_labels = None
depends_on = None

# The audit log's actor and serial-number filters match lower(value) by prefix. The index
# leads with the lower-cased value; PostgreSQL needs text_pattern_ops for LIKE 'prefix%'.
PREFIX_INDEXES = {'ix_audit_events_actor_prefix': 'actor',
                  'ix_audit_events_serial_number_prefix': 'serial_number'}


def upgrade():
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    for name, column in PREFIX_INDEXES.items():
        op.create_index(name, 'audit_events',
                        [sa.func.lower(sa.column(column)).label(f'{column}_lower'),
                         'occurred_at', 'id'],
                        postgresql_ops={f'{column}_lower': 'text_pattern_ops'})


def downgrade():
    for name in PREFIX_INDEXES:
        op.drop_index(name, table_name='audit_events')
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
