"""Provisioning options: time zone, enterprise Wi-Fi (EAP) and proxy on a QR code

Revision ID: 0016_options
Revises: 0015_preflight
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa

from portal.provisioning import search


# revision identifiers, used by Alembic.
revision = '0016_options'
down_revision = '0015_preflight'
branch_labels = None
depends_on = None

def _columns():
    return [
        sa.Column('time_zone', sa.String(length=64), nullable=True),
        sa.Column('wifi_eap_method', sa.String(length=8), nullable=True),
        sa.Column('wifi_phase2', sa.String(length=8), nullable=True),
        sa.Column('wifi_identity', sa.String(length=256), nullable=True),
        sa.Column('wifi_anonymous_identity', sa.String(length=256), nullable=True),
        sa.Column('wifi_domain', sa.String(length=256), nullable=True),
        sa.Column('wifi_ca_certificate', sa.Text(), nullable=True),
        sa.Column('wifi_user_certificate_enc', sa.Text(), nullable=True),
        sa.Column('proxy_host', sa.String(length=253), nullable=True),
        sa.Column('proxy_port', sa.Integer(), nullable=True),
        sa.Column('proxy_bypass', sa.String(length=1024), nullable=True),
        sa.Column('pac_url', sa.String(length=1024), nullable=True),
    ]
# The checks as 0001 made them (downgrade) and as the model now states them (EAP allowed).
_OLD = {
    'network_settings':
        "(network = 'wifi' AND wifi_ssid IS NOT NULL AND wifi_security IN ('WPA', 'WEP', 'NONE'))"
        " OR (network = 'mobile' AND wifi_ssid IS NULL AND wifi_security IS NULL"
        " AND wifi_password_enc IS NULL)",
    'wifi_password_presence':
        "(wifi_security IN ('WPA', 'WEP') AND wifi_password_enc IS NOT NULL)"
        " OR (wifi_security = 'NONE' AND wifi_password_enc IS NULL) OR wifi_security IS NULL",
}
_NEW = {
    'network_settings':
        "(network = 'wifi' AND wifi_ssid IS NOT NULL"
        " AND wifi_security IN ('WPA', 'WEP', 'EAP', 'NONE'))"
        " OR (network = 'mobile' AND wifi_ssid IS NULL AND wifi_security IS NULL"
        " AND wifi_password_enc IS NULL)",
    'wifi_password_presence':
        "(wifi_security IN ('WPA', 'WEP') AND wifi_password_enc IS NOT NULL)"
        " OR (wifi_security = 'NONE' AND wifi_password_enc IS NULL)"
        " OR (wifi_security = 'EAP' AND wifi_eap_method IS NOT NULL AND wifi_identity IS NOT NULL)"
        " OR wifi_security IS NULL",
}


def _replace_checks(batch_op, checks):
    for name, condition in checks.items():
        batch_op.drop_constraint(name, type_='check')
        batch_op.create_check_constraint(name, condition)


def _sqlite_search() -> None:
    # SQLite's batch copies qr_codes into a new table, which drops the search triggers on it.
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in search.drop_statements() + search.create_statements(
            search.QR_CODE_TEXT_0009):
        op.execute(statement)


def upgrade():
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        for column in _columns():
            batch_op.add_column(column)
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        _replace_checks(batch_op, _NEW)
    _sqlite_search()


def downgrade():
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        _replace_checks(batch_op, _OLD)
        for column in reversed(_columns()):
            batch_op.drop_column(column.name)
    _sqlite_search()
