"""A minimal OpenID provider on loopback for tests that only need discovery to succeed: the OpenID
configuration, a JWKS with one key, and an open Dynamic Client Registration endpoint. It signs no
tokens (SSO sign-in tests use the real provider in tests/sso/op)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REGISTERED_SECRET = "stub-registered-client-SECRET"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        issuer = self.server.issuer
        if self.path == "/.well-known/openid-configuration":
            self._answer(200, {"issuer": issuer, "authorization_endpoint": f"{issuer}/authorize",
                               "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/jwks",
                               "registration_endpoint": f"{issuer}/register", "response_types_supported": ["code"]})
        elif self.path == "/jwks":
            self._answer(200, {"keys": [{"kty": "RSA", "kid": "stub", "use": "sig", "alg": "RS256", "e": "AQAB",
                                         "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl"}]})
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/register":
            self.server.registrations += 1
            self._answer(201, {"client_id": f"stub-client-{self.server.registrations}",
                               "client_secret": REGISTERED_SECRET})
        else:
            self._answer(404, {"error": "not_found"})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    issuer = ""
    registrations = 0


@contextmanager
def stub_openid_provider() -> Iterator[str]:
    """The issuer URL of a running stub provider."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="oidc-stub", daemon=True)
    thread.start()
    try:
        yield server.issuer
    finally:
        server.shutdown()
        server.server_close()
