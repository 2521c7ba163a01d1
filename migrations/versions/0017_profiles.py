"""Network profiles and bulk batches; a QR code remembers its profile version and batch

Revision ID: 0017_profiles
Revises: 0016_options
Create Date: 2026-12-04

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime
from portal.provisioning import search


# revision identifiers, used by Alembic.
revision = '0017_profiles'
down_revision = '0016_options'
branch_labels = None
depends_on = None


def _sqlite_search() -> None:
    # SQLite's batch copies qr_codes into a new table, which drops the search triggers on it.
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in search.drop_statements() + search.create_statements(
            search.QR_CODE_TEXT_0009):
        op.execute(statement)


def upgrade():
    op.create_table(
        'network_profiles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_key', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('network', sa.String(length=6), nullable=False),
        sa.Column('wifi_ssid', sa.String(length=128), nullable=True),
        sa.Column('wifi_security', sa.String(length=4), nullable=True),
        sa.Column('wifi_password_enc', sa.Text(), nullable=True),
        sa.Column('wifi_hidden', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('updated_by', sa.String(length=150), nullable=True),
        sa.CheckConstraint("network IN ('wifi', 'mobile')", name=op.f('ck_network_profiles_network_known')),
        sa.CheckConstraint(
            "(network = 'wifi' AND wifi_ssid IS NOT NULL AND wifi_security IN ('WPA', 'WEP', "
            "'NONE')) OR (network = 'mobile' AND wifi_ssid IS NULL AND wifi_security IS NULL "
            "AND wifi_password_enc IS NULL)", name=op.f('ck_network_profiles_network_settings')),
        sa.CheckConstraint("version >= 1", name=op.f('ck_network_profiles_version_positive')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_network_profiles')),
        sa.UniqueConstraint('name_key', name=op.f('uq_network_profiles_name_key')),
    )
    op.create_table(
        'batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('row_count', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('network_profile_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_by_name', sa.String(length=150), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('preparing', 'created', 'failed')", name=op.f('ck_batches_state_known')),
        sa.CheckConstraint("done >= 0 AND done <= row_count", name=op.f('ck_batches_done_range')),
        sa.ForeignKeyConstraint(['network_profile_id'], ['network_profiles.id'], name=op.f('fk_batches_network_profile_id_network_profiles'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by_id'], ['admin_users.id'], name=op.f('fk_batches_created_by_id_admin_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_batches')),
        sa.UniqueConstraint('public_id', name=op.f('uq_batches_public_id')),
    )
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network_profile_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('network_profile_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_qr_codes_network_profile_id'), ['network_profile_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qr_codes_batch_id'), ['batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_qr_codes_network_profile_id_network_profiles'), 'network_profiles', ['network_profile_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_qr_codes_batch_id_batches'), 'batches', ['batch_id'], ['id'])
    _sqlite_search()


def downgrade():
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_qr_codes_batch_id_batches'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_qr_codes_network_profile_id_network_profiles'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_qr_codes_batch_id'))
        batch_op.drop_index(batch_op.f('ix_qr_codes_network_profile_id'))
        batch_op.drop_column('batch_id')
        batch_op.drop_column('network_profile_version')
        batch_op.drop_column('network_profile_id')
    _sqlite_search()
    op.drop_table('batches')
    op.drop_table('network_profiles')
