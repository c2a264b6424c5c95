"""indexes for the overview metrics: recently changed incidents, verification failures by time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The overview's "today versus yesterday" figures read only incidents touched since yesterday's
midnight (every event moves updated_at), and the department board counts verify_fail events of
the last week; without these indexes both scan the whole history (see data/metrics.py).
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_incidents_updated_at', 'incidents', ['updated_at'])
    op.create_index('ix_incident_events_action_at', 'incident_events', ['action', 'at'])


def downgrade() -> None:
    op.drop_index('ix_incident_events_action_at', table_name='incident_events')
    op.drop_index('ix_incidents_updated_at', table_name='incidents')
