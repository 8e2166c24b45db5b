"""Run the HTTP service: one listening socket, N uvicorn workers, metrics shared between them.

`cds serve` binds the socket itself, before any worker starts, so a port in use or a host
that is not this machine's is reported in one line and nothing has claimed to be ready.
The socket is created as an explicit TCP socket with TCP_NODELAY: asyncio sets TCP_NODELAY
on accepted connections only when the listening socket says IPPROTO_TCP, and a socket that
uvicorn binds for its workers says 0, so every small response waited for a delayed ACK
(about 40 ms a request with --workers 2).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator

from cds.config import ConfigError, Settings, env_name
from cds.logging_setup import logging_config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_BIND_PROBLEMS = {
    errno.EADDRINUSE: "address already in use (another process listens on this port)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "not an address of this machine",
}


def bind(host: str, port: int, label: Callable[[str], str] = env_name) -> socket.socket:
    """A listening TCP socket on host:port, or ConfigError naming the setting at fault."""
    where = f"{label('host')}={host} {label('port')}={port}"
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"{label('host')}={host}: cannot resolve it to an address of "
                          f"this machine ({exc})") from None
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accept()
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        problem = _BIND_PROBLEMS.get(exc.errno or 0, exc.strerror or str(exc))
        raise ConfigError(f"{where}: cannot listen: {problem}") from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """A folder where every worker writes its metrics (prometheus-client multiprocess mode).

    Set before any worker imports prometheus_client; emptied at start, removed at exit
    unless the operator chose the folder."""
    chosen = os.environ.get(MULTIPROC_ENV)
    path = chosen or tempfile.mkdtemp(prefix="cds-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if not chosen:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def run(settings: Settings, sock: socket.socket) -> None:
    """Serve on an already bound socket with settings.workers processes."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "cds.asgi:app",
        workers=settings.workers,
        log_config=logging_config(settings.log_level, settings.log_format),
        log_level=settings.log_level,
        access_log=False,  # cds.access logs each request, without query strings
        server_header=False,
        # a worker loads the clinical content and terminology before it answers pings: on a
        # busy 2-core machine that can pass uvicorn's 5 s default and get it killed at start
        timeout_worker_healthcheck=30,
    )
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("cds.server").info(
        "bound http://%s:%d; starting %d worker(s)", shown, port, settings.workers,
        extra={"workers": settings.workers, "port": port})
    # uvicorn ends a single-process server by raising the SIGTERM it caught once it has shut
    # down; as an exception it still lets the metrics folder be removed, then it is re-raised
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        with metrics_dir():
            if settings.workers > 1:
                supervisor = Multiprocess(config, sockets=[sock])
                supervisor.run()
                failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
            else:
                server = uvicorn.Server(config)
                server.run(sockets=[sock])
                failed = not server.started
    except _Stopped:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    else:
        if failed:  # a worker could not start (its error is in the log): not a clean exit
            sys.exit(STARTUP_FAILURE)


class _Stopped(Exception):
    """SIGTERM, turned into an exception so that clean-up runs."""


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped
