"""Bulk batches: the checked rows of a preview, staged until the batch is created

Revision ID: 0018_bulk
Revises: 0017_profiles
Create Date: 2026-12-04

"""
from alembic import op
import sqlalchemy as sa

from portal.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0018_bulk'
down_revision = '0017_profiles'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'staged_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('network_profile_id', sa.Integer(), nullable=True),
        sa.Column('otp_validity', sa.String(length=10), nullable=True),
        sa.Column('rows_json', sa.Text(), nullable=False),
        sa.Column('row_count', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['network_profile_id'], ['network_profiles.id'],
                                name=op.f('fk_staged_batches_network_profile_id_network_profiles'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['admin_users.id'],
                                name=op.f('fk_staged_batches_created_by_id_admin_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'],
                                name=op.f('fk_staged_batches_batch_id_batches'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staged_batches')),
        sa.UniqueConstraint('public_id', name=op.f('uq_staged_batches_public_id')),
        sa.UniqueConstraint('batch_id', name=op.f('uq_staged_batches_batch_id')),
    )


def downgrade():
    op.drop_table('staged_batches')
