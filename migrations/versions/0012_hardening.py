"""Hardening: end users' sessions end at sign-out (a session epoch per end user); attempts past
a limit in the audit log, one row per window with a count

Revision ID: 0012_hardening
Revises: 0011_devices
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_hardening'
down_revision = '0011_devices'
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not a batch: SQLite's batch copy of portal_users would write its generated
# search_key column (ALTER TABLE … DROP COLUMN needs SQLite 3.35, Debian 12 has 3.40).
def upgrade():
    op.add_column('portal_users', sa.Column('session_epoch', sa.Integer(), server_default='0',
                                            nullable=False))
    op.add_column('audit_events', sa.Column('attempts', sa.Integer(), nullable=True))
    op.create_index('ux_audit_events_attempt_window', 'audit_events',
                    ['action', 'occurred_at', 'client_address', 'code', 'target'], unique=True,
                    sqlite_where=sa.text('attempts IS NOT NULL'),
                    postgresql_where=sa.text('attempts IS NOT NULL'))


def downgrade():
    op.drop_index('ux_audit_events_attempt_window', table_name='audit_events')
    op.drop_column('audit_events', 'attempts')
    op.drop_column('portal_users', 'session_epoch')
