"""Preflight: the runs of Admin → Preflight and `flask preflight`, for the page and the wizard

Revision ID: 0015_preflight
Revises: 0014_stale
Create Date: 2026-12-03

"""
from alembic import op
import sqlalchemy as sa

import portal.database


# revision identifiers, used by Alembic.
revision = '0015_preflight'
down_revision = '0014_stale'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'preflight_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ran_at', portal.database.UTCDateTime(), nullable=False),
        sa.Column('actor_type', sa.String(length=8), nullable=False),
        sa.Column('actor', sa.String(length=256), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('warnings', sa.Integer(), nullable=False),
        sa.Column('results', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_preflight_runs')))
    op.create_index(op.f('ix_preflight_runs_ran_at'), 'preflight_runs', ['ran_at'])


def downgrade():
    op.drop_index(op.f('ix_preflight_runs_ran_at'), table_name='preflight_runs')
    op.drop_table('preflight_runs')
