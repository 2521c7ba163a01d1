"""Android Management API: its settings, the work owed to Google, a QR code's management

Revision ID: 0021_amapi
Revises: 0020_webhooks
Create Date: 2026-12-04

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime
from portal.provisioning import search


# revision identifiers, used by Alembic.
revision = '0021_amapi'
down_revision = '0020_webhooks'
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
        'amapi_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_name', sa.String(length=255), nullable=True),
        sa.Column('key_enc', sa.Text(), nullable=True),
        sa.Column('key_email', sa.String(length=255), nullable=True),
        sa.Column('key_id', sa.String(length=64), nullable=True),
        sa.Column('policy_ssp', sa.String(length=100), nullable=True),
        sa.Column('policy_auto', sa.String(length=100), nullable=True),
        sa.Column('push_email', sa.String(length=255), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('updated_by', sa.String(length=150), nullable=True),
        sa.CheckConstraint('id = 1', name=op.f('ck_amapi_settings_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_amapi_settings')),
    )
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('management', sa.String(length=9), nullable=False,
                                      server_default='companion'))
        batch_op.add_column(sa.Column('enrollment_token_name', sa.String(length=255),
                                      nullable=True))
        batch_op.create_check_constraint('management_known',
                                         "management IN ('companion', 'adp')")
    _sqlite_search()
    # Not a batch: SQLite cannot copy devices' computed columns; a plain ADD COLUMN is enough.
    op.add_column('devices', sa.Column('amapi_name', sa.String(length=255), nullable=True))
    op.create_index(op.f('ix_devices_amapi_name'), 'devices', ['amapi_name'], unique=True)
    with op.batch_alter_table('network_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('management', sa.String(length=9), nullable=False,
                                      server_default='companion'))
        batch_op.create_check_constraint('management_known',
                                         "management IN ('companion', 'adp')")
    op.create_table(
        'amapi_tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('resource', sa.String(length=255), nullable=False),
        sa.Column('qr_code_id', sa.Integer(), nullable=True),
        sa.Column('device_id', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('done_at', UTCDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('delete_token', 'remove_signin', 'delete_device')",
                           name=op.f('ck_amapi_tasks_kind_known')),
        sa.CheckConstraint('attempts >= 0', name=op.f('ck_amapi_tasks_attempts_not_negative')),
        sa.ForeignKeyConstraint(['qr_code_id'], ['qr_codes.id'],
                                name=op.f('fk_amapi_tasks_qr_code_id_qr_codes')),
        sa.ForeignKeyConstraint(['device_id'], ['devices.id'],
                                name=op.f('fk_amapi_tasks_device_id_devices')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_amapi_tasks')),
        sa.UniqueConstraint('kind', 'resource', name='one_task_per_resource'),
    )
    op.create_index('ix_amapi_tasks_done_at_next_attempt_at', 'amapi_tasks',
                    ['done_at', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_amapi_tasks_qr_code_id'), 'amapi_tasks', ['qr_code_id'],
                    unique=False)
    op.create_index(op.f('ix_amapi_tasks_device_id'), 'amapi_tasks', ['device_id'],
                    unique=False)


def downgrade():
    op.drop_table('amapi_tasks')
    with op.batch_alter_table('network_profiles', schema=None) as batch_op:
        batch_op.drop_constraint('management_known', type_='check')
        batch_op.drop_column('management')
    op.drop_index(op.f('ix_devices_amapi_name'), table_name='devices')
    op.drop_column('devices', 'amapi_name')
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.drop_constraint('management_known', type_='check')
        batch_op.drop_column('enrollment_token_name')
        batch_op.drop_column('management')
    _sqlite_search()
    op.drop_table('amapi_settings')
