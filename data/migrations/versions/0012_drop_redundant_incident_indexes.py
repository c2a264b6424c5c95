"""Drop two incident indexes others already serve, so every new incident writes two fewer index entries

ix_incidents_reported_at (reported_at) is the leading column of ix_incidents_warning_cover, which
serves any range on reported_at; ix_incidents_open_district (is_open, district_id, state) is served by
the partial ix_incidents_open_cover (is_open, district_id, ... state, ...) for every query the screens
make (they ask for open incidents). Each costs every insert an index entry: about a tenth of a file
import's time together.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_incidents_reported_at', table_name='incidents')
    op.drop_index('ix_incidents_open_district', table_name='incidents')


def downgrade() -> None:
    op.create_index('ix_incidents_open_district', 'incidents', ['is_open', 'district_id', 'state'])
    op.create_index('ix_incidents_reported_at', 'incidents', ['reported_at'])
