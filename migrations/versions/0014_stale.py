"""Stale QR codes: the Companion each QR code was made with (component name and checksum),
filled in from the frozen payloads

Revision ID: 0014_stale
Revises: 0013_apk
Create Date: 2026-12-03

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_stale'
down_revision = '0013_apk'
branch_labels = None
depends_on = None

PREFIX = 'android.app.extra.PROVISIONING_DEVICE_ADMIN_'
BATCH = 1000


def upgrade():
    op.add_column('qr_codes', sa.Column('companion_component', sa.String(length=255),
                                        nullable=True))
    op.add_column('qr_codes', sa.Column('companion_checksum', sa.String(length=64),
                                        nullable=True))
    _backfill(op.get_bind())
    op.create_index('ix_qr_codes_companion', 'qr_codes',
                    ['companion_checksum', 'companion_component', 'id', 'revoked_at'],
                    sqlite_where=sa.text('revoked_at IS NULL'),
                    postgresql_where=sa.text('revoked_at IS NULL'))


def _backfill(connection):
    """Read each payload (encrypted with the app's SECRET_KEY: the migration runs inside the
    app, so portal.vault decrypts them). One it cannot decrypt or parse stays NULL, which the
    portal shows as not stale rather than guessing."""
    qr_codes = sa.table('qr_codes', sa.column('id', sa.Integer), sa.column('payload_enc'),
                        sa.column('companion_component'), sa.column('companion_checksum'))
    last = 0
    while True:
        rows = connection.execute(sa.select(qr_codes.c.id, qr_codes.c.payload_enc)
                                  .where(qr_codes.c.id > last).order_by(qr_codes.c.id)
                                  .limit(BATCH)).all()
        if not rows:
            return
        values = [value for value in map(_companion_of, rows) if value]
        if values:
            connection.execute(
                qr_codes.update().where(qr_codes.c.id == sa.bindparam('qr_id'))
                .values(companion_component=sa.bindparam('component'),
                        companion_checksum=sa.bindparam('checksum')), values)
        last = rows[-1].id


def _companion_of(row) -> dict | None:
    from portal import vault
    try:
        payload = json.loads(vault.decrypt(row.payload_enc))
        component = payload[PREFIX + 'COMPONENT_NAME']
        checksum = payload[PREFIX + 'SIGNATURE_CHECKSUM'].rstrip('=')
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if len(component) > 255 or len(checksum) > 64:
        return None
    return {'qr_id': row.id, 'component': component, 'checksum': checksum}


def downgrade():
    # Plain ALTER TABLE (SQLite 3.35+), as in 0012.
    op.drop_index('ix_qr_codes_companion', table_name='qr_codes')
    op.drop_column('qr_codes', 'companion_checksum')
    op.drop_column('qr_codes', 'companion_component')
