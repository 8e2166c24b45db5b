"""The tables as the queries see them. Migrations (cds/store/migrations) create and change
them; a change here needs a migration beside it (tests compare the two)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, Table, Text

metadata = MetaData()

# one row per card we answered with, for the feedback report's card types; pruned after the
# retention period unless feedback refers to it
issued_card = Table(
    "issued_card", metadata,
    Column("uuid", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("card_type", Text, nullable=False),
    Column("indicator", Text, nullable=False),
    Column("issued_at", Text, nullable=False),  # ISO 8601 UTC, microseconds: sorts as text
    Index("issued_card_issued_at", "issued_at"),
)

# clinicians' feedback; the fingerprint makes a resubmission a no-op
feedback = Table(
    "feedback", metadata,
    Column("fingerprint", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("card", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("accepted", Text),
    Column("override_code", Text),
    Column("override_comment", Text),
    Column("outcome_timestamp", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    Index("feedback_card", "card"),
)

# client JWT ids seen while their token lives (key: sha256 of issuer and jti), shared by every
# process using the database so that a token is accepted once
seen_token = Table(
    "seen_token", metadata,
    Column("token_key", Text, primary_key=True),
    Column("issuer", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # seconds since the epoch
    Index("seen_token_expires_at", "expires_at"),
)
