"""merge: one head again after accounts, early warning, roll-ups, calendar and admin were built side by side

Revision ID: 0010
Revises: 0005, 0006, 0007, 0008, 0009
Create Date: 2026-12-04
"""

revision = '0010'
down_revision = ('0005', '0006', '0007', '0008', '0009')
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch separate tables."""


def downgrade() -> None:
    """Nothing to change."""
