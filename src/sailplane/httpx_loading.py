"""Loading httpx without its command line, for the server and the user CLI alike (neither runs `httpx`).

httpx's package imports `httpx._main` whenever click is installed, and that pulls in click, rich and pygments:
~50 ms of a CLI command's start and ~4 MB of a server's memory, more than the rest of httpx. With the module
marked missing while httpx loads, httpx's `main` is its stub; the mark goes once it has loaded, so a later
`import httpx._main` still works."""

from __future__ import annotations

import sys


def import_httpx_without_cli() -> None:
    if "httpx" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        if "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]
