"""administration: the admin audit log (admin_events)

Revision ID: 0009
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('admin_events',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('at', TS, nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_key', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_events'))
    )
    op.create_index('ix_admin_events_entity', 'admin_events', ['entity', 'entity_key', 'id'])
    op.create_index('ix_admin_events_at', 'admin_events', ['at'])


def downgrade() -> None:
    op.drop_index('ix_admin_events_at', table_name='admin_events')
    op.drop_index('ix_admin_events_entity', table_name='admin_events')
    op.drop_table('admin_events')
