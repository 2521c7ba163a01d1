"""Admin API tokens

Revision ID: 0019_adminapi
Revises: 0018_bulk
Create Date: 2026-12-04

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0019_adminapi'
down_revision = '0018_bulk'
branch_labels = None
depends_on = None


_OLD = "actor_type IN ('admin', 'user', 'device', 'operator', 'system')"
_NEW = "actor_type IN ('admin', 'user', 'device', 'operator', 'system', 'api_token')"
_CHECK = 'ck_audit_events_actor_type_known'


def _actor_types(old: str, new: str, length: int) -> None:
    """The audit log's actors gain 'api_token' (an Admin API token, by its name). SQLite:
    its documented way to change a CHECK constraint without copying the table (which is
    large, and has expression indexes a batch copy would not keep): the schema's text is
    edited in place (https://sqlite.org/lang_altertable.html#otheralter); its column
    lengths are not enforced. PostgreSQL: ALTER TABLE."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
        bind.exec_driver_sql("PRAGMA writable_schema=ON")
        for before, after in ((old, new), (f"actor_type VARCHAR({16 if length == 8 else 8})",
                                           f"actor_type VARCHAR({length})")):
            bind.exec_driver_sql(
                "UPDATE sqlite_master SET sql = replace(sql, ?, ?) "
                "WHERE type = 'table' AND name = 'audit_events'", (before, after))
        bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
        return
    op.drop_constraint(op.f(_CHECK), 'audit_events', type_='check')
    op.alter_column('audit_events', 'actor_type', type_=sa.String(length=length),
                    existing_nullable=False)
    op.create_check_constraint(op.f(_CHECK), 'audit_events', new)


def upgrade():
    _actor_types(_OLD, _NEW, 16)
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_key', sa.String(length=100), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('last_used_at', UTCDateTime(), nullable=True),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.Column('revoked_by', sa.String(length=64), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'provision')", name=op.f('ck_api_tokens_scope_known')),
        sa.CheckConstraint("length(name) >= 1", name=op.f('ck_api_tokens_name_not_empty')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('public_id', name=op.f('uq_api_tokens_public_id')),
        sa.UniqueConstraint('name_key', name=op.f('uq_api_tokens_name_key')),
    )


def downgrade():
    op.execute("DELETE FROM audit_events WHERE actor_type = 'api_token'")
    _actor_types(_NEW, _OLD, 8)
    op.drop_table('api_tokens')
