"""the fleet console: admin roles and TOTP, QR code names, device contact and retirement

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), nullable=False,
                                      server_default='administrator'))
        batch_op.add_column(sa.Column('totp_secret_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', UTCDateTime(), nullable=True))
        batch_op.create_check_constraint('role_known', "role IN ('administrator', 'helpdesk')")
    op.create_table(
        'admin_recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('admin_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['admin_id'], ['admin_users.id'],
                                name=op.f('fk_admin_recovery_codes_admin_id_admin_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_recovery_codes')),
    )
    op.create_index(op.f('ix_admin_recovery_codes_admin_id'), 'admin_recovery_codes',
                    ['admin_id'], unique=False)
    with op.batch_alter_table('sign_in_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin_totp_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_contact_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('retired_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('retired_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_devices_retired_by_id_admin_users'),
                                    'admin_users', ['retired_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_devices_retired_by_id_admin_users'),
                                 type_='foreignkey')
        batch_op.drop_column('retired_by_id')
        batch_op.drop_column('retired_at')
        batch_op.drop_column('last_contact_at')
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.drop_column('name')
    with op.batch_alter_table('sign_in_settings', schema=None) as batch_op:
        batch_op.drop_column('admin_totp_required')
    op.drop_index(op.f('ix_admin_recovery_codes_admin_id'), table_name='admin_recovery_codes')
    op.drop_table('admin_recovery_codes')
    with op.batch_alter_table('admin_users', schema=None) as batch_op:
        batch_op.drop_constraint('role_known', type_='check')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret_enc')
        batch_op.drop_column('role')
