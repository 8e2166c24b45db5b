"""Mutation fuzzing of real requests: take the example hook requests and a feedback, break
them the way a buggy or hostile client would (wrong types, extreme numbers, lone surrogates,
deep nesting, missing or duplicated parts) and post them to the service in process.

The test suite runs a few hundred cases (tests/test_fuzz_mutations.py); a longer run is

    .venv/bin/python -m tests.mutations --cases 10000 [--seed 1]

which prints how many requests got each status and exits 1 if any got a 5xx (each such case
is printed with the mutations that caused it, so it can be replayed).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOOK = "/cds-services/thigh-pain"
FEEDBACK = "/cds-services/thigh-pain/feedback"


def _deep(depth: int, leaf: Any = "x") -> Any:
    value: Any = leaf
    for level in range(depth):
        value = {"url": "http://example.org/x", "extension": [value]} if level % 2 else [value]
    return value


NASTY: list[Any] = [
    None, True, False, 0, -1, 5, 1.5, -1e308, 1e308, 10**30, -(10**30), 1e-320, "", " ",
    "x", "\ud800", "\udc00 comment", "\U0001f600", "\u200b", "9" * 400, "a" * 20_000,
    [], [None], [5, "x"], {}, {"resourceType": "Bundle", "entry": 5},
    {"resourceType": "OperationOutcome"}, {"coding": 1.5}, {"coding": [{"code": 5}]},
    {"value": -1e308, "unit": "Cel"}, "2026-13-45", "Patient/123", "../../etc/passwd",
    "http://169.254.169.254/latest", "{{context.patientId}}", "NaN",
]


def nasty(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return _deep(rng.randint(50, 460))
    return copy.deepcopy(rng.choice(NASTY))  # fresh: later mutations may write into it


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*path, index))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def mutate(doc: Any, rng: random.Random) -> tuple[Any, list[str]]:
    """One to three random mutations of a deep copy of `doc`, and what they were."""
    doc = json.loads(json.dumps(doc))
    done: list[str] = []
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(doc))
        path = rng.choice(paths[1:] or paths)
        if not path:
            doc = nasty(rng)
            done.append("replace the whole body")
            break
        parent, last = _parent(doc, path), path[-1]
        action = rng.choice(["replace", "replace", "replace", "delete", "duplicate", "add"])
        where = "/".join(str(p) for p in path)
        if action == "replace":
            parent[last] = nasty(rng)
            done.append(f"replace {where} with {json.dumps(parent[last])[:60]}")
        elif action == "delete":
            del parent[last]
            done.append(f"delete {where}")
        elif action == "duplicate" and isinstance(parent, list):
            parent.extend([parent[last]] * rng.randint(1, 50))
            done.append(f"duplicate {where}")
        elif isinstance(parent, dict):
            key = rng.choice(["extension", "resourceType", "entry", "coding", "value", "id",
                              "\ud800", "__proto__"])
            parent[key] = nasty(rng)
            done.append(f"add {key!r} beside {where}")
    return doc, done


def seeds() -> list[tuple[str, dict[str, Any]]]:
    """The example hook requests and a feedback, as (endpoint, body)."""
    found: list[tuple[str, dict[str, Any]]] = [
        (HOOK, json.loads(p.read_text())) for p in sorted((ROOT / "examples/requests").glob(
            "*.json"))]
    found.append((FEEDBACK, {"feedback": [{
        "card": str(uuid.uuid4()), "outcome": "overridden",
        "overrideReason": {"reason": {"system": "urn:thigh-pain-cds:override-reason",
                                      "code": "not-applicable", "display": "Not applicable"},
                           "userComment": "seen yesterday"},
        "outcomeTimestamp": "2026-11-24T12:05:00Z"}]}))
    found.append((FEEDBACK, {"feedback": [{
        "card": str(uuid.uuid4()), "outcome": "accepted",
        "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
        "outcomeTimestamp": "2026-11-24T12:05:00Z"}]}))
    return found


def make_client() -> Any:
    from fastapi.testclient import TestClient

    from cds.api import create_app
    from cds.config import Settings

    database = Path(tempfile.mkdtemp()) / "mutations.sqlite3"
    app = create_app(Settings(database_url=f"sqlite:///{database}"))
    return TestClient(app, raise_server_exceptions=False)


def post(client: Any, endpoint: str, body: Any) -> int:
    text = json.dumps(body, allow_nan=True)  # NaN and lone surrogates pass through as sent
    reply = client.post(endpoint, content=text.encode("utf-8", "surrogatepass"),
                        headers={"Content-Type": "application/json"})
    return int(reply.status_code)


def run(cases: int, seed: int) -> tuple[Counter[int], list[str]]:
    import logging

    logging.disable(logging.WARNING)  # each skipped resource logs; the figures are the point
    rng = random.Random(seed)
    client, bases = make_client(), seeds()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for case in range(cases):
        endpoint, base = rng.choice(bases)
        body, how = mutate(base, rng)
        status = post(client, endpoint, body)
        statuses[status] += 1
        if status >= 500:
            failures.append(f"case {case} (seed {seed}) {endpoint}: {'; '.join(how)}")
    return statuses, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    statuses, failures = run(args.cases, args.seed)
    took = time.monotonic() - started
    print(f"{args.cases} mutated requests (seed {args.seed}) in {took:.0f} s: "
          + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    for line in failures[:50]:
        print("5xx:", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
