"""indexes for the overview metrics: open incidents (partial, covering), recently changed ones, verification failures

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The overview reads the open incidents (a few percent of all) with their clocks: a partial index
holding every column it needs answers from the index alone, without visiting scattered table rows.
Its "today versus yesterday" figures read only incidents touched since yesterday's midnight (every
event moves updated_at), and the department board counts verify_fail events of the last week;
without these indexes each scans the whole history (see data/metrics/kpis.py).
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


OPEN_COVER_COLUMNS = [
    'is_open', 'district_id', 'street_id', 'community_id', 'grid_id', 'state', 'assignee_department_id',
    'category_id', 'unlocated', 'reported_at', 'dispatched_at', 'acknowledged_at', 'resolved_at', 'returned_at',
    'ack_due_at', 'handle_due_at',
]


def upgrade() -> None:
    op.create_index(
        'ix_incidents_open_cover', 'incidents', OPEN_COVER_COLUMNS,
        sqlite_where=sa.text('is_open = 1'), postgresql_where=sa.text('is_open'),
    )
    op.create_index('ix_incidents_updated_at', 'incidents', ['updated_at'])
    op.create_index('ix_incident_events_action_at', 'incident_events', ['action', 'at'])


def downgrade() -> None:
    op.drop_index('ix_incident_events_action_at', table_name='incident_events')
    op.drop_index('ix_incidents_updated_at', table_name='incidents')
    op.drop_index('ix_incidents_open_cover', table_name='incidents')
