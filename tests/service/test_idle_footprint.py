"""What an idle API server leaves unloaded (bench/api_bench.py's idle RSS, ≤ 150 MB): Alembic once the schema is
current, httpx's command line (click, rich, pygments), and what only a feature in use needs: dnspython (webhook
hosts and SSO domain proofs through configured nameservers), segno (an MFA enrolment's QR code), websockets (a
notebook opened), protobuf (a Sail server's health check). Each check fails if an eager import comes back. The
server is the app with its lifespan run, in a fresh interpreter, on a database of its own (SQLite: runs once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

START_AND_LIST_MODULES = """
import asyncio, json, sys
from sailplane.app import create_app
app = create_app()
async def main():
    async with app.router.lifespan_context(app):
        pass
asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""
FEATURE_MODULES = {"dns", "segno", "websockets", "httpx._main", "rich", "pygments", "grpc_health.v1", "google.protobuf"}


def loaded_by_an_idle_server(data_dir: Path) -> set[str]:
    env = {**os.environ, "SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_COMPUTE_ENABLED": "false"}
    env.pop("SAILPLANE_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", START_AND_LIST_MODULES], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return {m for m in json.loads(done.stdout.splitlines()[-1])}


def watched(modules: set[str], names: set[str]) -> set[str]:
    return {name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)}


def test_an_idle_server_loads_no_feature_it_does_not_use(tmp_path: Path) -> None:
    first = loaded_by_an_idle_server(tmp_path)  # a new database: migrated, which takes Alembic
    assert "alembic" in watched(first, {"alembic"}), "the first start applies the migrations"
    assert watched(first, FEATURE_MODULES - {"pygments"}) == set()  # Alembic's mako brings pygments
    again = loaded_by_an_idle_server(tmp_path)  # a restart: the schema is current
    assert watched(again, FEATURE_MODULES | {"alembic", "mako"}) == set()
