"""early warning: alerts, their audit log, sensitivity per category; covering indexes for the detection pass

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index('ix_incidents_warning_cover', 'incidents', ['reported_at', 'grid_id', 'category_id', 'state', 'lon', 'lat'])
    op.create_index('ix_units_grid_cover', 'units', ['level', 'id', 'community_id', 'street_id', 'centroid_lon', 'centroid_lat', 'area_m2'])
    op.create_table('alerts',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('condition_key', sa.String(length=160), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', BigId, nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('observed', sa.Float(), nullable=True),
    sa.Column('expected', sa.Float(), nullable=True),
    sa.Column('reason_en', sa.Text(), nullable=False),
    sa.Column('reason_zh', sa.Text(), nullable=False),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('first_seen_at', TS, nullable=False),
    sa.Column('last_seen_at', TS, nullable=False),
    sa.Column('acted_at', TS, nullable=True),
    sa.Column('acted_by', sa.String(length=128), nullable=True),
    sa.Column('act_note', sa.Text(), nullable=True),
    sa.Column('case_incident_id', BigId, nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("kind IN ('surge','hotspot','chronic','deadline')", name=op.f('ck_alerts_kind')),
    sa.CheckConstraint("status IN ('open','acknowledged','dismissed','cased','cleared')", name=op.f('ck_alerts_status')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_alerts_unit_id_units')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_alerts_category_id_categories')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_alerts_incident_id_incidents')),
    sa.ForeignKeyConstraint(['case_incident_id'], ['incidents.id'], name=op.f('fk_alerts_case_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_alerts_dedup_key'))
    )
    op.create_index('ix_alerts_status_score', 'alerts', ['status', 'score'])
    op.create_index('ix_alerts_condition', 'alerts', ['condition_key', 'id'])
    op.create_index('ix_alerts_unit', 'alerts', ['unit_id'])
    op.create_table('alert_events',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('alert_id', BigId, nullable=True),
    sa.Column('at', TS, nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("action IN ('raised','updated','acknowledge','dismiss','case','cleared','settings')", name=op.f('ck_alert_events_action')),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_events_alert_id_alerts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_events'))
    )
    op.create_index('ix_alert_events_alert', 'alert_events', ['alert_id', 'id'])
    op.create_table('warning_settings',
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('sensitivity', sa.Float(), server_default=sa.text('1.0'), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('updated_at', TS, nullable=True),
    sa.Column('updated_by', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_warning_settings_category_id_categories')),
    sa.PrimaryKeyConstraint('category_id', name=op.f('pk_warning_settings'))
    )


def downgrade() -> None:
    op.drop_table('warning_settings')
    op.drop_index('ix_alert_events_alert', table_name='alert_events')
    op.drop_table('alert_events')
    op.drop_index('ix_alerts_unit', table_name='alerts')
    op.drop_index('ix_alerts_condition', table_name='alerts')
    op.drop_index('ix_alerts_status_score', table_name='alerts')
    op.drop_table('alerts')
    op.drop_index('ix_units_grid_cover', table_name='units')
    op.drop_index('ix_incidents_warning_cover', table_name='incidents')
