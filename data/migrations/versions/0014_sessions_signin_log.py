"""Revocable sessions and the sign-in log: sessions, signin_events; users.password_changed_at replaces the account lock

A sign-out ends the session's row, so a copied cookie stops working. Sign-in failures are throttled
per user name and address from the sign-in log rather than by locking the account for everyone:
users.failed_logins and users.locked_until go.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kiosk_token_id", sa.Integer(), nullable=True),
        sa.Column("user_version", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint("(user_id IS NULL) <> (kiosk_token_id IS NULL)", name=op.f("ck_sessions_one_principal")),
        sa.ForeignKeyConstraint(["kiosk_token_id"], ["kiosk_tokens.id"], name=op.f("fk_sessions_kiosk_token_id_kiosk_tokens")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_sessions_key_hash")),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "signin_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), server_default="", nullable=False),
        sa.Column("login_name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=64), server_default="", nullable=False),
        sa.Column("user_agent", sa.String(length=256), server_default="", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signin_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_events")),
    )
    op.create_index("ix_signin_events_throttle", "signin_events", ["login_name", "address", "at"])
    op.create_index("ix_signin_events_at", "signin_events", ["at"])
    # In place on SQLite (3.35+), as 0011 does: a batch copy of `users` would drop a table other rows point at.
    op.add_column("users", sa.Column("password_changed_at", TS, nullable=True))
    op.drop_column("users", "failed_logins")
    op.drop_column("users", "locked_until")


def downgrade() -> None:
    op.add_column("users", sa.Column("locked_until", TS, nullable=True))
    op.add_column("users", sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.drop_column("users", "password_changed_at")
    op.drop_index("ix_signin_events_at", table_name="signin_events")
    op.drop_index("ix_signin_events_throttle", table_name="signin_events")
    op.drop_table("signin_events")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
