"""Map geometry prepared once per units version: prepared_geometry

Each map level's units, simplified and serialised for the screens, stored by the first process that
needs them, so every other web process and server (and every restart) loads them instead of
simplifying tens of thousands of polygons again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""
import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'prepared_geometry',
        sa.Column('units_version', sa.String(length=80), nullable=False),
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('detail', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.LargeBinary(), nullable=True),
        sa.Column('features', sa.Integer(), nullable=False),
        sa.Column('builder', sa.String(length=120), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('build_ms', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('units_version', 'level', 'detail', name=op.f('pk_prepared_geometry')),
    )


def downgrade() -> None:
    op.drop_table('prepared_geometry')
