"""API keys' jurisdiction: api_keys.unit_id (NULL = the whole city)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

FK = 'fk_api_keys_unit_id_units'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # Not batch mode: copying api_keys to add a foreign key drops the old table, which SQLite
        # refuses (foreign_keys=ON) while api_idempotency rows point at it. SQLite adds a nullable
        # column with an inline REFERENCES in place instead.
        op.execute('ALTER TABLE api_keys ADD COLUMN unit_id INTEGER REFERENCES units (id)')
        return
    op.add_column('api_keys', sa.Column('unit_id', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f(FK), 'api_keys', 'units', ['unit_id'], ['id'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE api_keys DROP COLUMN unit_id')  # SQLite 3.35+, in place for the same reason
        return
    op.drop_constraint(op.f(FK), 'api_keys', type_='foreignkey')
    op.drop_column('api_keys', 'unit_id')
