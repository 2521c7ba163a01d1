"""indexes for the long lists: Pending and its search, View OTP, the audit log

On PostgreSQL the search indexes are trigram (GIN) indexes from the pg_trgm extension, which
this revision creates if it is missing: pg_trgm is a trusted extension (PostgreSQL 13 and
later), so an owner of the database may create it without being a superuser.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

"""
from alembic import op
import sqlalchemy as sa

TRIGRAMS = "gin_trgm_ops"
# portal_users.search_key, kept by the database (PostgreSQL: stored; SQLite: virtual).
SEARCH_KEY = "lower(username || ' ' || coalesce(display_name, '') || ' ' || coalesce(email, ''))"


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# (name, table, columns) created by this revision.
NEW = [
    ("ix_qr_codes_listing", "qr_codes",
     ["created_at", "id", "public_id", "wifi_ssid", "alternative_email", "user_id"]),
    ("ix_pending_enrollments_qr_code_id_id", "pending_enrollments", ["qr_code_id", "id"]),
    ("ix_audit_events_action_occurred_at_id", "audit_events", ["action", "occurred_at", "id"]),
    ("ix_audit_events_outcome_occurred_at_id", "audit_events", ["outcome", "occurred_at", "id"]),
    ("ix_audit_events_actor_occurred_at_id", "audit_events", ["actor", "occurred_at", "id"]),
    ("ix_audit_events_target_occurred_at_id", "audit_events", ["target", "occurred_at", "id"]),
    ("ix_audit_events_serial_number_occurred_at_id", "audit_events",
     ["serial_number", "occurred_at", "id"]),
]
# (name, table, columns): trigram indexes on PostgreSQL, plain ones on SQLite (see the models).
SEARCH = [
    ("ix_qr_codes_search", "qr_codes", ["public_id", "wifi_ssid", "alternative_email"]),
    ("ix_portal_users_search", "portal_users", ["search_key"]),
]
# (name, table, columns) that the new ones replace: each is a prefix of one above.
REPLACED = [
    ("ix_qr_codes_created_at_id", "qr_codes", ["created_at", "id"]),
    ("ix_audit_events_action_occurred_at", "audit_events", ["action", "occurred_at"]),
    ("ix_audit_events_serial_number", "audit_events", ["serial_number"]),
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.add_column("portal_users", sa.Column("search_key", sa.String(length=800),
                                            sa.Computed(SEARCH_KEY), nullable=True))
    for name, table, columns in NEW:
        op.create_index(name, table, columns, unique=False)
    for name, table, columns in SEARCH:
        op.create_index(name, table, columns, unique=False, postgresql_using="gin",
                        postgresql_ops={column: TRIGRAMS for column in columns})
    for name, table, _columns in REPLACED:
        op.drop_index(name, table_name=table)


def downgrade():
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns, unique=False)
    for name, table, _columns in NEW + SEARCH:
        op.drop_index(name, table_name=table)
    op.drop_column("portal_users", "search_key")
    # pg_trgm stays: other objects of the database may have come to use it.
