"""`sailplane login --sso`: SSO through the user's browser, for a native client (RFC 8252).

The CLI listens once on `http://127.0.0.1:<random port>/callback`, starts the sign-in with that redirect, its own
PKCE challenge and a state, and sends the browser to the identity provider. The server verifies the provider's
answer and sends the browser back to the loopback with a one-time code, which the CLI exchanges with its PKCE
verifier (exchangeSsoCode) for the login: the token never passes through the browser."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import sys
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sailplane.client.cli.common import can_open_a_browser, fail

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from sailplane.client import Client

_ID = re.compile(r"^[A-Z0-9]{1,20}$")
DONE_PAGE = (b"<!doctype html><meta charset=utf-8><title>Sailplane</title>"
             b"<p>Signed in: you can close this tab and return to the terminal.</p>")


class Loopback:
    """A one-shot HTTP server on 127.0.0.1 that takes the first `/callback` carrying our state."""

    def __init__(self, state: str) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer

        self.state = state
        self.code: str | None = None
        self.error: str | None = None
        self.done = threading.Event()
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                loopback.answer(self)

            def log_message(self, *args: Any) -> None:  # not on the user's terminal
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        # Anything else (another path, a forged or replayed state) is not our sign-in: refused, and we keep waiting.
        if parts.path != "/callback" or self.done.is_set() or \
                not secrets.compare_digest(query.get("state", "").encode(), self.state.encode()):
            request.send_error(404)
            return
        self.code, self.error = query.get("code"), query.get("error_description") or query.get("error")
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(DONE_PAGE)))
        request.end_headers()
        request.wfile.write(DONE_PAGE)
        self.done.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sso_login(client: Client, target: str, email: str, timeout: float, print_only: bool) -> dict[str, Any]:
    """The exchangeSsoCode answer (a token, or an MFA challenge). `target`: an identity provider ID, or an email
    address or domain whose verified provider is found by the server (a domain needs the email: `email`)."""
    from sailplane.client.core import to_error

    if _ID.match(target):
        idp, hint = target, email or None
    else:
        hint = target if "@" in target else email
        if not hint or "@" not in hint or hint.rsplit("@", 1)[1].lower() != target.rsplit("@", 1)[-1].lower():
            fail(f"--sso {target}: give your email address in that domain (--sso you@{target.rsplit('@', 1)[-1]} "
                 "or --email)", 2)
        idp = "discover"
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    loopback = Loopback(secrets.token_urlsafe(24))
    try:
        request = client.core.build("startSsoLogin", {"idp": idp}, query={
            "loginHint": hint, "redirectUri": loopback.redirect_uri, "codeChallenge": challenge,
            "state": loopback.state})
        response = client.http.get(request.url, params=request.params, headers=request.headers)
        if response.status_code >= 400:
            raise to_error(response)
        provider_url = response.headers["location"]  # the server checked the provider is usable
        _send_browser(provider_url, print_only)
        if not loopback.done.wait(timeout):
            fail(f"no answer from the browser within {timeout:.0f} s; run `sailplane login --sso` again", 3)
    finally:
        loopback.close()
    if not loopback.code:
        fail(f"the sign-in was refused: {loopback.error or 'no code came back'}", 3)
    answer: dict[str, Any] = client.call("exchangeSsoCode", body={"code": loopback.code, "codeVerifier": verifier})
    return answer


def _send_browser(url: str, print_only: bool) -> None:
    """Open the provider's page, and say so with the URL for a browser on this machine (the redirect comes back to
    this computer's loopback: a browser elsewhere cannot finish it)."""
    print(f"Sign in with your identity provider in the browser; if it does not open, visit on this computer:\n"
          f"  {url}", file=sys.stderr, flush=True)
    if print_only or not can_open_a_browser():
        return
    import webbrowser

    webbrowser.open(url)
