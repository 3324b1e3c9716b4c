"""`sailplane serve` runs the gateway over TLS with a self-signed certificate it makes, says how to
trust it, and a PySpark client that trusts it runs a query through it (a real remote-style client)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.sessions.conftest import assert_no_sail_left
from tests.sessions.helpers import close, issue_token, open_session, org_with_team
from tests.support.clients import run_script
from tests.support.ports import free_port

CLIENT = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.remote(sys.argv[1]).create()
    try:
        print(json.dumps({"sum": spark.range(10).selectExpr("sum(id) AS s").collect()[0]["s"]}))
    finally:
        spark.stop()
    """
)


@pytest.mark.skipif(os.environ.get("SAILPLANE_TEST_DATABASE", "sqlite") != "sqlite", reason="serve defaults to SQLite")
def test_serve_with_self_signed_tls(tmp_path: Path) -> None:
    port, gateway_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = {**os.environ, "SAILPLANE_DATA_DIR": str(data_dir), "SAILPLANE_GATEWAY_PORT": str(gateway_port)}
    env.pop("SAILPLANE_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "sailplane.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline and proc.poll() is None, "serve did not become ready"
            time.sleep(0.2)
        cert = data_dir / "tls" / "gateway-cert.pem"
        assert cert.exists() and (data_dir / "tls" / "gateway-key.pem").stat().st_mode & 0o077 == 0
        assert httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json").json()["keys"]
        owner, team = org_with_team(f"http://127.0.0.1:{port}/api/v1")
        session = open_session(owner, team)
        endpoint = session["connectionInfo"]["grpcEndpoint"]
        assert endpoint == f"sc://localhost:{gateway_port}"
        url = f"{endpoint}/;use_ssl=true;token={issue_token(owner, session['id'])}"
        client_env = {**os.environ, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(cert)}
        out = run_script(sys.executable, CLIENT, url, env=client_env, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {"sum": 45}
        close(owner, session["id"])
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
        assert_no_sail_left(data_dir)
    assert f"Gateway:   sc://localhost:{gateway_port} (TLS" in output
    assert f"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={cert}" in output
    assert "use_ssl=true" in output
