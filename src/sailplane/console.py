"""The web console (console/, a React SPA built by Vite) served at `/` of the API's origin.

A GET or HEAD that no route of the app answers and that is not under `/api` is the console's: a built file
when one is at that path (hashed `assets/` cached for a year), else `index.html`, so every page of the SPA is
a deep link. API paths, `/metrics`, the docs and the notebook proxy keep their own answers (unknown `/api/...`
paths stay the API's JSON 404). Without a build, the console's paths answer a page saying how to build it.
The page learns one fact of the deployment from a meta tag: whether the Spark Connect gateway speaks TLS (the
session's `connectionInfo.grpcEndpoint` does not say), so its PySpark snippet connects as the server expects.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from sailplane.kit.errors import error_body

API_ROOT = "/api"
# What the request metrics label the console's answers with (they read the route's operationId from the scope).
CONSOLE_ROUTE = SimpleNamespace(operation_id="console", path="/", name="console")
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "console" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
# Everything the console loads is its own (no CDN); it is never framed by another site.
CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sailplane</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Sailplane is running</h1>
<p>The web console has not been built. Build it with <code>scripts/build_console.sh</code> (needs Node.js 20
and npm; <code>scripts/serve.sh</code> does it for you), then reload this page.</p>
<p>The API is at <a href="/api/v1/docs">/api/v1/docs</a>.</p></body></html>"""


def _wants_a_page(headers: Headers) -> bool:
    """Browsers navigating ask for text/html (or anything); an API client asking for JSON only gets the 404."""
    accept = headers.get("accept", "*/*")
    return "text/html" in accept or "*/*" in accept


class ConsoleMiddleware:
    """Answers the console's paths before the router's 404; everything else goes on to the app. Inside the input
    guard (a NUL in the path is refused before it reaches here) and the request metrics (operation `console`)."""

    def __init__(self, app: ASGIApp, router: Router, directory: Path | None, gateway_tls: bool) -> None:
        self.app = app
        self.router = router  # read at request time: routes are added after the middleware
        self.directory = (directory or DEFAULT_DIR).resolve()
        self.meta = f'<meta name="sailplane-gateway-tls" content="{str(gateway_tls).lower()}">'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not self._is_console(scope):
            await self.app(scope, receive, send)
            return
        scope["route"] = CONSOLE_ROUTE
        response = self._answer(scope)
        await response(scope, receive, send)

    def _is_console(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path == API_ROOT or path.startswith(API_ROOT + "/"):
            return False
        return not any(route.matches(scope)[0] is not Match.NONE for route in self.router.routes)

    def _answer(self, scope: Scope) -> Response:
        index = self.directory / "index.html"
        relative = PurePosixPath(scope["path"].lstrip("/"))
        if relative.parts and all(part not in ("", ".", "..") for part in relative.parts):
            candidate = (self.directory / relative).resolve()
            if candidate.is_file() and candidate.is_relative_to(self.directory):
                return self._file(candidate, relative, Headers(scope=scope))
            # Not a page, built or not: a file the build does not have (an old asset, a typo), a well-known URI
            # another program looks for (/.well-known/openid-configuration: an SSO client must learn this is no
            # provider), or a caller that asks for JSON, not a page.
            if "." in relative.name or any(part.startswith(".") for part in relative.parts) \
                    or not _wants_a_page(Headers(scope=scope)):
                body = error_body(404, "not_found", "The file was not found.", Request(scope))
                return JSONResponse(body, status_code=404)
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        page = index.read_bytes().replace(b"</head>", self.meta + b"</head>", 1)
        return HTMLResponse(page, headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                                           "X-Content-Type-Options": "nosniff"})

    @staticmethod
    def _file(path: Path, relative: PurePosixPath, request_headers: Headers) -> Response:
        """A built file; its gzip copy (made by the build, `x.js.gz`) to a browser that accepts gzip."""
        headers = {"Cache-Control": IMMUTABLE if relative.parts[0] == "assets" else "no-cache",
                   "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
        compressed = path.with_name(path.name + ".gz")
        if "gzip" in request_headers.get("accept-encoding", "") and compressed.is_file():
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return FileResponse(compressed, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
        return FileResponse(path, headers=headers)
