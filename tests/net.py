"""Loopback helpers for tests that start real servers."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class TrickleServer:
    """An HTTP server on 127.0.0.1 that sends one byte at a time, slowly, for as long as the
    client listens: in the status line and headers (`where="headers"`) or, after complete
    headers, in the body (`where="body"`). It counts the connections it holds."""

    def __init__(self, where: str = "headers", interval: float = 0.2) -> None:
        self.where = where
        self.interval = interval
        self.open = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/fhir"

    def __enter__(self) -> TrickleServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with self._lock:
            self.open += 1
            self.accepted += 1
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
        if self.where == "body":
            prefix = head + b"Content-Length: 1000000\r\n\r\n"
            start, filler = b'{"resourceType": "Bundle", "entry": [', b" "
        else:
            prefix, start, filler = b"", head + b"X-Slow: ", b"a"
        try:
            with conn:
                conn.sendall(prefix)
                for byte in itertools.chain(start, itertools.repeat(filler[0])):
                    if self._stop.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
        except OSError:
            pass  # the client hung up: what the service should do at its deadline
        finally:
            with self._lock:
                self.open -= 1
