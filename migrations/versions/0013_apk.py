"""Companion APK: the APK saved with the Companion settings (file SHA-256, version code, name)

Revision ID: 0013_apk
Revises: 0012_hardening
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_apk'
down_revision = '0012_hardening'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('companion_settings', sa.Column('apk_sha256', sa.String(length=64), nullable=True))
    op.add_column('companion_settings', sa.Column('apk_version_code', sa.Integer(), nullable=True))
    op.add_column('companion_settings', sa.Column('apk_version_name', sa.String(length=255),
                                                  nullable=True))


def downgrade():
    with op.batch_alter_table('companion_settings') as batch:
        batch.drop_column('apk_version_name')
        batch.drop_column('apk_version_code')
        batch.drop_column('apk_sha256')
