"""Console tests: the serving rules against the app itself, and the browser test against a compute node (the
sessions' one: real Sail servers and gateway, so the copied PySpark snippet really connects)."""

from __future__ import annotations

from tests.sessions.conftest import compute_api, compute_server

__all__ = ["compute_api", "compute_server"]
