"""SQLite: trigram full-text tables for the Pending search (PostgreSQL has pg_trgm since 0005)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

"""
from alembic import op

from portal.provisioning import search

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in search.create_statements(search.QR_CODE_TEXT_0006):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in search.drop_statements():
        op.execute(statement)
