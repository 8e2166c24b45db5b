"""A tiny read-only FHIR server over a bundle's resources, on loopback.

`cds replay --fetch` starts one so the service takes the path an EHR without prefetch
makes it take (fetch from `fhirServer`, page by page); tests use it for real-HTTP checks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cds.bundle import search, searchset


def _handler(resources: list[dict[str, Any]], page_size: int, token: str | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                self._send(401, {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "login"}]})
                return
            parts = urlsplit(self.path)
            path = parts.path.removeprefix("/fhir")
            if path.rstrip("/").endswith("/metadata"):
                self._send(200, {"resourceType": "CapabilityStatement", "status": "active",
                                 "fhirVersion": "4.0.1", "kind": "instance"})
                return
            params = parse_qs(parts.query)
            offset = int(params.pop("_offset", ["0"])[0])
            params.pop("_count", None)
            query = path.lstrip("/") + ("?" + urlencode(params, doseq=True) if params else "")
            hits = search(resources, query)
            if "?" not in query and "/" in path.strip("/"):
                if hits:
                    self._send(200, hits[0])
                else:
                    self._send(404, {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "not-found"}]})
                return
            page = hits[offset: offset + page_size]
            bundle = searchset(page)
            bundle["total"] = len(hits)
            if offset + page_size < len(hits):
                host = self.headers.get("Host", "127.0.0.1")
                nxt = dict(params, _offset=[str(offset + page_size)])
                bundle["link"] = [{"relation": "next", "url": f"http://{host}{parts.path}?"
                                                               f"{urlencode(nxt, doseq=True)}"}]
            self._send(200, bundle)

    return Handler


@contextmanager
def serve_resources(resources: list[dict[str, Any]], page_size: int = 100,
                    token: str | None = None) -> Iterator[str]:
    """Serve resources on 127.0.0.1 on a free port; yields the FHIR base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(resources, page_size, token))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
