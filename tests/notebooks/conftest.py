"""Notebook tests use the main test server; the workload environment test also needs a compute node
(the sessions' fixture: real Sail processes)."""

from tests.sessions.conftest import compute_api, compute_server

__all__ = ["compute_api", "compute_server"]
