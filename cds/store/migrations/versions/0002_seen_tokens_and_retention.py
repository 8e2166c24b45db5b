"""Seen client token ids shared by all processes; an index to prune issued cards by age.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_token",
        sa.Column("token_key", sa.Text, primary_key=True),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("seen_token_expires_at", "seen_token", ["expires_at"])
    op.create_index("issued_card_issued_at", "issued_card", ["issued_at"])
