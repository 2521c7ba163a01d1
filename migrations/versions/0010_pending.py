"""the QR code's Name in the Pending search: listing and trigram indexes, SQLite's FTS5 text

Revision ID: 0010_pending
Revises: 0009_signin
Create Date: 2026-12-03

"""
from alembic import op

from portal.provisioning import search

# revision identifiers, used by Alembic.
revision = '0010_pending'
down_revision = '0009_signin'
branch_labels = None
depends_on = None

TRIGRAMS = "gin_trgm_ops"
LISTING = ["created_at", "id", "public_id", "wifi_ssid", "alternative_email", "user_id"]
SEARCH = ["public_id", "wifi_ssid", "alternative_email"]


def _indexes(listing: list[str], searched: list[str]) -> None:
    op.drop_index("ix_qr_codes_listing", table_name="qr_codes")
    op.drop_index("ix_qr_codes_search", table_name="qr_codes")
    op.create_index("ix_qr_codes_listing", "qr_codes", listing, unique=False)
    op.create_index("ix_qr_codes_search", "qr_codes", searched, unique=False,
                    postgresql_using="gin",
                    postgresql_ops={column: TRIGRAMS for column in searched})


def _sqlite_search(qr_code_text: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in search.drop_statements() + search.create_statements(qr_code_text):
        op.execute(statement)


def upgrade():
    _indexes(LISTING + ["name"], SEARCH + ["name"])
    _sqlite_search(search.QR_CODE_TEXT_0009)


def downgrade():
    _indexes(LISTING, SEARCH)
    _sqlite_search(search.QR_CODE_TEXT_0006)
