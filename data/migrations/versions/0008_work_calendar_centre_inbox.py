"""working-hours calendar (work_calendar, work_calendar_days) and the command centre's inbox (centre_notifications)

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('work_calendar',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('weekdays', sa.String(length=32), nullable=False),
    sa.Column('hours', sa.String(length=200), nullable=False),
    sa.Column('urgent_wall_clock', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_work_calendar_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_calendar'))
    )
    op.create_table('work_calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('working', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_work_calendar_days'))
    )
    op.create_table('centre_notifications',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('incident_id', BigId, nullable=False),
    sa.Column('event_id', BigId, nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('read_at', TS, nullable=True),
    sa.Column('read_by', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_centre_notifications_incident_id_incidents')),
    sa.ForeignKeyConstraint(['event_id'], ['incident_events.id'], name=op.f('fk_centre_notifications_event_id_incident_events')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_centre_notifications_department_id_departments')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_centre_notifications_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_centre_notifications'))
    )
    op.create_index('ix_centre_notifications_unread', 'centre_notifications', ['read_at', 'id'])
    op.create_index('ix_centre_notifications_incident', 'centre_notifications', ['incident_id'])


def downgrade() -> None:
    op.drop_index('ix_centre_notifications_incident', table_name='centre_notifications')
    op.drop_index('ix_centre_notifications_unread', table_name='centre_notifications')
    op.drop_table('centre_notifications')
    op.drop_table('work_calendar_days')
    op.drop_table('work_calendar')
