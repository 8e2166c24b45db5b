"""Issued-card bookkeeping off the request path: a writer thread behind a bounded queue.

A hook call hands its rows over and answers at once. The writer waits a moment after the first
rows arrive (`linger`), then commits everything queued in one transaction (group commit): under
load that is one transaction and one thread wake-up for dozens of hook calls, instead of one
per call, each of which would take the GIL from the request path. When the queue is full, or
the store fails, rows are dropped, counted and logged: bookkeeping never decides whether a
clinician gets cards. The same thread runs periodic maintenance (pruning), so that is off the
request path too.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from cds.store.engine import StoreUnavailable

log = logging.getLogger("cds.store")

Row = dict[str, Any]
WARN_EVERY_SECONDS = 60.0


class Bookkeeper:
    def __init__(self, write: Callable[[Sequence[Row]], None], maintain: Callable[[], Any], *,
                 capacity: int = 10_000, batch_rows: int = 2_000,
                 maintain_every: float = 3600.0, linger: float = 0.1) -> None:
        self._write = write
        self._maintain = maintain
        self._queue: queue.Queue[list[Row] | threading.Event | None] = queue.Queue(capacity)
        self._batch_rows = batch_rows
        self._maintain_every = maintain_every
        self._linger = linger
        self._hurry = threading.Event()  # flush or close: stop lingering
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self._failing_since: float | None = None
        self._last_warning: float | None = None
        self._warned = False  # an error was logged and its recovery not yet

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cds-store-writer",
                                                daemon=True)
                self._thread.start()

    def submit(self, rows: list[Row]) -> None:
        """Queue rows for writing; never blocks, never raises."""
        if not rows:
            return
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            self._dropped(len(rows), "queue full (the store is slow or down)")

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped)."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        self._hurry.set()
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("issued-card writer did not drain in %.0f s; %d batches lost",
                        timeout, self._queue.qsize())
            return
        self._hurry.set()
        thread.join(timeout)
        self._thread = None

    # ------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        next_maintenance = time.monotonic()
        while True:
            if time.monotonic() >= next_maintenance:
                self._run_maintenance()
                next_maintenance = time.monotonic() + self._maintain_every
            try:
                item = self._queue.get(timeout=max(0.0, next_maintenance - time.monotonic()))
            except queue.Empty:
                continue
            if isinstance(item, list) and self._linger > 0:
                self._hurry.wait(self._linger)  # let more calls' rows queue up behind these
            self._hurry.clear()
            rows: list[Row] = []
            waiters: list[threading.Event] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    rows.extend(item)
                if stop or len(rows) >= self._batch_rows:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if rows:
                self._commit(rows)
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _commit(self, rows: list[Row]) -> None:
        try:
            self._write(rows)
        except StoreUnavailable as exc:
            self._dropped(len(rows), f"store unavailable: {exc}")
            return
        except Exception as exc:  # a bug must not kill the writer thread
            log.exception("issued-card writer failed")
            self._dropped(len(rows), f"{exc.__class__.__name__}: {exc}")
            return
        self.written += len(rows)
        with self._lock:
            if self._warned and self._failing_since is not None:
                log.warning("issued-card bookkeeping recovered after %.0f s; %d cards dropped "
                            "so far", time.monotonic() - self._failing_since, self.dropped)
                self._warned = False
            self._failing_since = None

    def _run_maintenance(self) -> None:
        try:
            self._maintain()
        except StoreUnavailable as exc:
            log.error("store maintenance (pruning) failed, will retry: %s", exc)
        except Exception:
            log.exception("store maintenance (pruning) failed, will retry")

    def _dropped(self, count: int, reason: str) -> None:
        """Count dropped rows; log at most once a minute (and the recovery after it)."""
        with self._lock:
            self.dropped += count
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
            if self._last_warning is None or now - self._last_warning >= WARN_EVERY_SECONDS:
                self._last_warning = now
                self._warned = True
                log.error("issued-card bookkeeping: %d cards not recorded (%d in all): %s; "
                          "clinical answers are unaffected", count, self.dropped, reason)
