"""one-click dispatch and reach: per-district responsibility list, inbox, webhook outbox and delivery log, webhook secrets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('departments') as batch:
        batch.add_column(sa.Column('webhook_secret', sa.Text(), nullable=True))
    op.create_table('category_district_departments',
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_category_district_departments_category_id_categories')),
    sa.ForeignKeyConstraint(['district_id'], ['units.id'], name=op.f('fk_category_district_departments_district_id_units')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_category_district_departments_department_id_departments')),
    sa.PrimaryKeyConstraint('category_id', 'district_id', name=op.f('pk_category_district_departments'))
    )
    op.create_table('notifications',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', BigId, nullable=False),
    sa.Column('event_id', BigId, nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('read_at', TS, nullable=True),
    sa.CheckConstraint('department_id IS NOT NULL OR worker_id IS NOT NULL', name=op.f('ck_notifications_recipient')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_notifications_department_id_departments')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_notifications_worker_id_workers')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_notifications_incident_id_incidents')),
    sa.ForeignKeyConstraint(['event_id'], ['incident_events.id'], name=op.f('fk_notifications_event_id_incident_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    op.create_index('ix_notifications_department', 'notifications', ['department_id', 'id'])
    op.create_index('ix_notifications_worker', 'notifications', ['worker_id', 'id'])
    op.create_table('webhook_deliveries',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', BigId, nullable=False),
    sa.Column('event_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('delivered_at', TS, nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('pending','delivered','failed','cancelled')", name=op.f('ck_webhook_deliveries_status')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_webhook_deliveries_department_id_departments')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_webhook_deliveries_incident_id_incidents')),
    sa.ForeignKeyConstraint(['event_id'], ['incident_events.id'], name=op.f('fk_webhook_deliveries_event_id_incident_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('event_id', 'department_id', name='uq_webhook_deliveries_event_department')
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_deliveries_incident', 'webhook_deliveries', ['incident_id', 'id'])
    op.create_table('webhook_attempts',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('delivery_id', BigId, nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', TS, nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index('ix_webhook_attempts_delivery', 'webhook_attempts', ['delivery_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_webhook_attempts_delivery', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_deliveries_incident', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_notifications_worker', table_name='notifications')
    op.drop_index('ix_notifications_department', table_name='notifications')
    op.drop_table('notifications')
    op.drop_table('category_district_departments')
    with op.batch_alter_table('departments') as batch:
        batch.drop_column('webhook_secret')
