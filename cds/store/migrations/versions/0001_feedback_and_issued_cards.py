"""Feedback and issued cards, as the service created them before it had migrations.

A database made by an earlier version already has these tables: they are adopted as they are.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "issued_card" not in existing:
        op.create_table(
            "issued_card",
            sa.Column("uuid", sa.Text, primary_key=True),
            sa.Column("service", sa.Text, nullable=False),
            sa.Column("card_type", sa.Text, nullable=False),
            sa.Column("indicator", sa.Text, nullable=False),
            sa.Column("issued_at", sa.Text, nullable=False),
        )
    if "feedback" not in existing:
        op.create_table(
            "feedback",
            sa.Column("fingerprint", sa.Text, primary_key=True),
            sa.Column("service", sa.Text, nullable=False),
            sa.Column("card", sa.Text, nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),
            sa.Column("accepted", sa.Text),
            sa.Column("override_code", sa.Text),
            sa.Column("override_comment", sa.Text),
            sa.Column("outcome_timestamp", sa.Text, nullable=False),
            sa.Column("received_at", sa.Text, nullable=False),
        )
        op.create_index("feedback_card", "feedback", ["card"])
