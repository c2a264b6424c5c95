"""Tell listeners when the change feed moves (PostgreSQL NOTIFY), and keep each background job's heartbeat

Every statement that adds incident events sends one NOTIFY on channel `citybrain_feed` with the
schema's name as payload, delivered at commit, so each web process learns of a change at once
instead of polling (SQLite has no NOTIFY: its processes keep polling the feed head).
`job_runs` holds one row per periodic job: who ran it last, when, how long, and what failed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_runs',
        sa.Column('job', sa.String(length=40), nullable=False),
        sa.Column('holder', sa.String(length=120), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('interval_s', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('job', name=op.f('pk_job_runs')),
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE FUNCTION citybrain_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN PERFORM pg_notify('citybrain_feed', current_schema()); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER tr_incident_events_notify AFTER INSERT ON incident_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION citybrain_feed_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS tr_incident_events_notify ON incident_events")
        op.execute("DROP FUNCTION IF EXISTS citybrain_feed_notify()")
    op.drop_table('job_runs')
