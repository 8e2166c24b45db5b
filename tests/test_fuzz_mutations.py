"""Mutated example requests never get a 5xx (hypothesis draws the mutations; see
tests/mutations.py for the engine and for the 10,000-case run documented in the README)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mutations import make_client, mutate, post, seeds

SEEDS = seeds()
CLIENT = make_client()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32 - 1))
def test_mutated_requests_never_get_a_server_error(which: int, seed: int) -> None:
    endpoint, base = SEEDS[which]
    body, how = mutate(base, random.Random(seed))
    status = post(CLIENT, endpoint, body)
    assert status < 500, f"{endpoint}: {'; '.join(how)}"
