"""Feedback survives a crash: kill -9 the server under load (feedback and hook calls, whose
issued cards the background writer is committing meanwhile), every acknowledged feedback is
in the database afterwards. A real uvicorn process on loopback, bounded in time."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

from tests.fhir import hook_request
from tests.net import free_port


def test_acknowledged_feedback_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "feedback.sqlite3"
    port = free_port()
    env = {**os.environ, "CDS_DATABASE_URL": f"sqlite:///{db}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "cds.asgi:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        acknowledged: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load() -> None:
            session = requests.Session()
            for _ in range(400):  # bounded
                if stop.is_set():
                    return
                card = str(uuid.uuid4())
                item = {"card": card, "outcome": "overridden",
                        "outcomeTimestamp": "2026-11-24T10:00:00Z"}
                try:
                    reply = session.post(f"{base}/cds-services/thigh-pain/feedback",
                                         json={"feedback": [item]}, timeout=5)
                except requests.RequestException:
                    return
                if reply.status_code == 200:
                    with lock:
                        acknowledged.append(card)

        hook_answers: list[int] = []

        def hooks() -> None:
            session = requests.Session()
            for _ in range(400):  # bounded
                if stop.is_set():
                    return
                request = hook_request(presenting=True)
                request["hookInstance"] = str(uuid.uuid4())
                try:
                    reply = session.post(f"{base}/cds-services/thigh-pain", json=request,
                                         timeout=5)
                except requests.RequestException:
                    return
                with lock:
                    hook_answers.append(reply.status_code)

        threads = [threading.Thread(target=load) for _ in range(4)]
        threads += [threading.Thread(target=hooks) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        server.send_signal(signal.SIGKILL)  # mid-load, no chance to flush anything
        server.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    assert acknowledged, "the server acknowledged nothing before it was killed"
    assert hook_answers and set(hook_answers) == {200}, "hook calls answered during the load"
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT card FROM feedback")}
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged feedback lost of {len(acknowledged)}"
    print(f"{len(acknowledged)} acknowledged before kill -9, all stored ({len(stored)} rows)")
