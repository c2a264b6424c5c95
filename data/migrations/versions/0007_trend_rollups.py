"""leaders' review roll-ups: daily sums per unit and department, the incidents as last counted, the refresher's state; hard-case indexes

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)
COUNTS = (
    'received', 'closed', 'first_time', 'rated', 'satisfied', 'acknowledged', 'ack_on_time', 'ack_late',
    'waiting', 'resolved', 'resolved_timed', 'on_time', 'no_effect', 'ended',
)
HARD_CASE_COVER = ('reported_at', 'id', 'state', 'closed_at', 'rejected_at', 'district_id', 'street_id')
TIMES = (
    'reported_at', 'dispatched_at', 'acknowledged_at', 'resolved_at', 'closed_at', 'rejected_at',
    'ack_due_at', 'handle_due_at',
)


def upgrade() -> None:
    op.create_table('trend_rollup',
    sa.Column('day', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('department_id', sa.Integer(), autoincrement=False, nullable=False),
    *(sa.Column(name, sa.Integer(), server_default=sa.text('0'), nullable=False) for name in COUNTS),
    sa.Column('ack_hist', sa.LargeBinary(), nullable=True),
    sa.Column('handle_hist', sa.LargeBinary(), nullable=True),
    sa.Column('hours', sa.LargeBinary(), nullable=True),
    sa.Column('categories', sa.LargeBinary(), nullable=True),
    sa.PrimaryKeyConstraint('day', 'unit_id', 'department_id', name=op.f('pk_trend_rollup'))
    )
    op.create_index('ix_trend_rollup_cell', 'trend_rollup', ['unit_id', 'department_id', 'day'])
    op.create_table('trend_rollup_seen',
    sa.Column('incident_id', BigId, autoincrement=False, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=True) for name in ('category_id', 'district_id', 'street_id', 'community_id', 'assignee_department_id')),
    *(sa.Column(name, sa.Float(), nullable=True) for name in TIMES),
    sa.Column('ack_late', sa.Boolean(), nullable=True),
    sa.Column('satisfaction', sa.SmallInteger(), nullable=True),
    sa.Column('reopen_count', sa.SmallInteger(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_trend_rollup_seen_incident_id_incidents')),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_trend_rollup_seen'))
    )
    op.create_table('trend_rollup_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('last_event_id', BigId, nullable=True),
    sa.Column('refreshed_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['last_event_id'], ['incident_events.id'], name=op.f('fk_trend_rollup_state_last_event_id_incident_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trend_rollup_state'))
    )
    op.create_index('ix_incidents_open_reported', 'incidents', list(HARD_CASE_COVER),
                    sqlite_where=sa.text('is_open = 1'), postgresql_where=sa.text('is_open'))
    op.create_index('ix_incidents_reopened', 'incidents', [sa.text('reopen_count DESC'), *HARD_CASE_COVER],
                    sqlite_where=sa.text('reopen_count > 0'), postgresql_where=sa.text('reopen_count > 0'))
    op.create_index('ix_incidents_escalated', 'incidents', [sa.text('escalation_level DESC'), *HARD_CASE_COVER],
                    sqlite_where=sa.text('escalation_level > 0'), postgresql_where=sa.text('escalation_level > 0'))


def downgrade() -> None:
    op.drop_index('ix_incidents_escalated', table_name='incidents')
    op.drop_index('ix_incidents_reopened', table_name='incidents')
    op.drop_index('ix_incidents_open_reported', table_name='incidents')
    op.drop_table('trend_rollup_state')
    op.drop_table('trend_rollup_seen')
    op.drop_index('ix_trend_rollup_cell', table_name='trend_rollup')
    op.drop_table('trend_rollup')
