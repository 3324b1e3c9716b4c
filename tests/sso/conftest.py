"""A real OpenID provider (the npm package oidc-provider) on loopback, started from tests/sso/op. (The real DNS
server the domain tests publish to is the session's one, `dns_server` in tests/conftest.py.)"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

OP_DIR = Path(__file__).parent / "op"


def _start(mode: str) -> Iterator[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the OpenID provider used by the SSO tests")
    if not (OP_DIR / "node_modules" / "oidc-provider").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OP_DIR, check=True, timeout=300)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([node, "provider.mjs", str(port), mode], cwd=OP_DIR, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the OpenID provider did not start")
            time.sleep(0.1)
        yield issuer
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="package")
def oidc_issuer() -> Iterator[str]:
    """Discovery, JWKS and open Dynamic Client Registration."""
    yield from _start("open")


@pytest.fixture(scope="package")
def oidc_issuer_without_dcr() -> Iterator[str]:
    yield from _start("noreg")


@pytest.fixture(scope="package")
def oidc_issuer_with_token_dcr() -> Iterator[str]:
    """Registration needs the initial access token "iat-secret"."""
    yield from _start("token")

