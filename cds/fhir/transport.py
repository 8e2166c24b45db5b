"""A requests session for one hook call's fetches: one hard deadline, checked addresses.

requests' own timeouts bound each socket operation, not a whole response: a server that sends
one byte a second never trips them. Here every socket a call opens is watched by a timer that
shuts it down when the call's deadline passes, so a read blocked on a trickling server (in the
status line, the headers, the body or a TLS handshake) ends at the deadline whatever the server
does, and the thread is free again.

Names are resolved once, at connection time; every address they resolve to is checked
(cds.fhir.scope.refused_address) and the socket connects to a checked address, so DNS answers,
rebinding and IPv4-mapped IPv6 forms cannot lead the service, with the EHR's bearer token, to a
cloud metadata endpoint.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager

from cds.fhir.scope import refused_address


class DeadlinePassed(TimeoutError):
    """The time budget for this call's FHIR reads is used up."""


class FetchGuard:
    """One call's deadline and the sockets it must cut when the deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.refused: str | None = None  # why a connection was refused, for the data gap
        self._watched: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> FetchGuard:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            watched, self._watched = self._watched, []
        for sock in watched:
            sock.close()

    def remaining(self) -> float:
        """Seconds left; DeadlinePassed when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0 or self.expired:
            raise DeadlinePassed(f"time budget for FHIR reads ({self.seconds:g} s) used up")
        return left

    def watch(self, sock: socket.socket) -> None:
        """Cut this connection at the deadline. A duplicate descriptor is kept because TLS
        wrapping detaches the original socket object; shutdown acts on the connection itself,
        so it wakes a read blocked on any descriptor of it."""
        duplicate = sock.dup()
        with self._lock:
            self._watched.append(duplicate)
            expired = self.expired
        if expired:
            _shutdown(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            watched = list(self._watched)
        for sock in watched:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer or by us
        sock.shutdown(socket.SHUT_RDWR)


class _Guarded:
    """Mixin for urllib3 connections: resolve, refuse forbidden addresses, connect to an
    address that was checked (never resolving twice), and watch the socket."""

    _guard: FetchGuard
    _dns_host: str
    port: int
    timeout: Any
    socket_options: Any

    def _refuse(self, message: str) -> NewConnectionError:
        self._guard.refused = message
        return NewConnectionError(self, message)  # type: ignore[arg-type]

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        try:
            found = socket.getaddrinfo(host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(host, self, exc) from exc  # type: ignore[arg-type]
        for *_, address in found:
            why = refused_address(str(address[0]))
            if why is not None:
                raise self._refuse(f"the fhirServer resolves to a {why} address "
                                   f"({address[0]}), which is never fetched from")
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        timeout = min(timeout or self._guard.seconds, self._guard.remaining())
        error: OSError | None = None
        for family, kind, proto, _, address in found:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            self._guard.watch(sock)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(self, f"connection to {host} timed out")
        raise NewConnectionError(self, f"failed to connect to {host}: {error}")  # type: ignore[arg-type]


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    def __init__(self, *args: Any, guard: FetchGuard, **kwargs: Any) -> None:
        self._guard = guard
        super().__init__(*args, **kwargs)


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    def __init__(self, *args: Any, guard: FetchGuard, **kwargs: Any) -> None:
        self._guard = guard
        super().__init__(*args, **kwargs)


class _GuardedPoolManager(PoolManager):
    def __init__(self, guard: FetchGuard, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(**kwargs)

    def _new_pool(self, scheme: str, host: str, port: int,
                  request_context: dict[str, Any] | None = None) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = (_GuardedHTTPSConnection if scheme == "https"  # type: ignore[misc]
                              else _GuardedHTTPConnection)
        pool.conn_kw["guard"] = self.guard
        return pool


class GuardedAdapter(HTTPAdapter):
    """A requests transport adapter whose connections obey a FetchGuard."""

    def __init__(self, guard: FetchGuard) -> None:
        self.guard = guard
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(self.guard, num_pools=connections,
                                               maxsize=maxsize, block=block, **pool_kwargs)


def guarded_session(guard: FetchGuard) -> requests.Session:
    """A session for one call: guarded connections, no proxies or .netrc from the
    environment (a proxy would resolve names where we cannot check them)."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
