"""mail delivery: SMTP settings and the outbox claim token

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

"""
from alembic import op
import sqlalchemy as sa

import portal.database  # noqa: F401  (UTCDateTime)


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('smtp_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=8), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=True),
    sa.Column('password_enc', sa.Text(), nullable=True),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('updated_at', portal.database.UTCDateTime(), nullable=False),
    sa.CheckConstraint("security IN ('none', 'starttls', 'tls')", name=op.f('ck_smtp_settings_security_known')),
    sa.CheckConstraint('id = 1', name=op.f('ck_smtp_settings_singleton')),
    sa.CheckConstraint('port BETWEEN 1 AND 65535', name=op.f('ck_smtp_settings_port_range')),
    sa.CheckConstraint('timeout BETWEEN 1 AND 120', name=op.f('ck_smtp_settings_timeout_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_smtp_settings'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('claim_token')

    op.drop_table('smtp_settings')
