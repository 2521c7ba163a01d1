"""sign-in settings; longer tenant ids for OpenID issuers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

"""
from alembic import op
import sqlalchemy as sa

import portal.database  # noqa: F401  (UTCDateTime)


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sign_in_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('local_enabled', sa.Boolean(), nullable=False),
    sa.Column('ldap_enabled', sa.Boolean(), nullable=False),
    sa.Column('ldap_url', sa.String(length=2048), nullable=True),
    sa.Column('ldap_security', sa.String(length=8), nullable=False),
    sa.Column('ldap_ca_cert', sa.Text(), nullable=True),
    sa.Column('ldap_bind_dn', sa.String(length=1024), nullable=True),
    sa.Column('ldap_bind_password_enc', sa.Text(), nullable=True),
    sa.Column('ldap_base_dn', sa.String(length=1024), nullable=True),
    sa.Column('ldap_user_attribute', sa.String(length=32), nullable=False),
    sa.Column('ldap_user_filter', sa.String(length=1024), nullable=True),
    sa.Column('ldap_timeout', sa.Integer(), nullable=False),
    sa.Column('azure_enabled', sa.Boolean(), nullable=False),
    sa.Column('azure_tenant', sa.String(length=255), nullable=True),
    sa.Column('azure_authority', sa.String(length=2048), nullable=True),
    sa.Column('azure_client_id', sa.String(length=255), nullable=True),
    sa.Column('azure_client_secret_enc', sa.Text(), nullable=True),
    sa.Column('updated_at', portal.database.UTCDateTime(), nullable=False),
    sa.CheckConstraint("ldap_security IN ('none', 'starttls', 'ldaps')", name=op.f('ck_sign_in_settings_ldap_security_known')),
    sa.CheckConstraint("ldap_user_attribute IN ('sAMAccountName', 'userPrincipalName', 'uid', 'mail')", name=op.f('ck_sign_in_settings_ldap_user_attribute_known')),
    sa.CheckConstraint('id = 1', name=op.f('ck_sign_in_settings_singleton')),
    sa.CheckConstraint('ldap_timeout BETWEEN 1 AND 60', name=op.f('ck_sign_in_settings_ldap_timeout_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_settings'))
    )
    with op.batch_alter_table('portal_users', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.String(length=64),
                              type_=sa.String(length=512), existing_nullable=True)


def downgrade():
    with op.batch_alter_table('portal_users', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.String(length=512),
                              type_=sa.String(length=64), existing_nullable=True)
    op.drop_table('sign_in_settings')
