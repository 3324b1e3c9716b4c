"""AWS for infrastructure tests: the moto server (PyPI `moto[server]`, pinned in requirements-dev.txt) as a separate
process on a loopback port (through `tests.infra.moto_server`, which adds the route table delete moto lacks),
started once per test session and reached through boto3's `endpoint_url` (`SAILPLANE_AWS_ENDPOINT_URL`), never
moto's in-process decorators. And a Sailplane server for these tests, on a database of its own (the shared test
server's operation runner would otherwise claim these tests' operations and call real AWS with them), with fast
operation loops and short leases.

What moto does not model, and the tests therefore cannot show: it accepts any external ID (and assumes roles that
do not exist), it enforces no IAM policy (neither the role's trust policy nor its permissions), it ignores
CloudFormation client request tokens, and its stack update replaces the template and outputs but does not apply
changes to an existing role's policies; its EKS clusters have no Kubernetes API server (the tests' moto server gives
them the address of `tests.infra.kube_standin`'s) and no access entries (the tests' moto server adds those too).
Every account is moto's default 123456789012.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from sailplane.config import Settings
from sailplane.kit.db import Database
from sailplane.migrations.runner import upgrade
from tests.conftest import make_settings
from tests.infra.kube_standin import KubeStandIn
from tests.support.databases import fresh_database
from tests.support.ports import free_port
from tests.support.server import LiveServer

ACCOUNT = "123456789012"  # moto's default account: the customer's account in these tests
REGION = "us-east-1"
PRINCIPAL = "arn:aws:iam::111122223333:role/sailplane-control-plane"  # the principal Sailplane runs as
# Credentials for everyone (moto accepts any): our server's default chain, and the customer's admin.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="package")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStandIn]:
    """The stand-in for every EKS cluster's Kubernetes API server (tests.infra.kube_standin)."""
    standin = KubeStandIn(tmp_path_factory.mktemp("kube-api"))
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@contextmanager
def moto_process(log_dir: Path, kube_api: KubeStandIn) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A moto server process (killed with its process group at the end) and its URL; its EKS clusters' endpoint is
    the Kubernetes API stand-in's."""
    port = free_port()
    log = (log_dir / "moto.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.infra.moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **AWS_ENV, "SAILPLANE_TEST_EKS_ENDPOINT": kube_api.endpoint,
                                 "SAILPLANE_TEST_EKS_CA": kube_api.ca_data}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the moto server exited ({proc.returncode}); see {log.name}")
            try:
                if httpx.get(f"{url}/moto-api/", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the moto server did not answer within 60 s")
            time.sleep(0.1)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="package")
def moto_url(tmp_path_factory: pytest.TempPathFactory, kube_api: KubeStandIn) -> Iterator[str]:
    """The moto server for the test session (`moto_process`)."""
    with moto_process(tmp_path_factory.mktemp("moto"), kube_api) as (_proc, url):
        kube_api.sts_url = url
        yield url


@pytest.fixture(scope="package")
def aws_credentials() -> Iterator[None]:
    """Our server's own AWS credentials (boto3's default chain reads the environment), as in production."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="package")
def infra_database(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> str:
    return fresh_database(database_url, tmp_path_factory.mktemp("infra-db"))


def infra_settings(data_dir: Any, database_url: str, moto: str, **overrides: Any) -> Settings:
    return make_settings(data_dir, database_url, None, **{
        "compute_enabled": False, "aws_endpoint_url": moto, "aws_principal_arn": PRINCIPAL,
        "operations_interval_seconds": 0.2, "operations_lease_seconds": 3.0, **overrides})


@pytest.fixture(scope="package")
def infra_server(tmp_path_factory: pytest.TempPathFactory, infra_database: str, moto_url: str,
                 aws_credentials: None) -> Iterator[LiveServer]:
    live = LiveServer(infra_settings(tmp_path_factory.mktemp("infra-node"), infra_database, moto_url))
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="package")
def infra_api(infra_server: LiveServer) -> str:
    return f"{infra_server.url}/api/v1"


@pytest.fixture
def customer_aws(moto_url: str, aws_credentials: None) -> Any:
    """The customer's admin's AWS access (a boto3 client factory): how they deploy our template themselves."""

    def client(service: str, region: str = REGION) -> Any:
        return boto3.session.Session().client(service, region_name=region, endpoint_url=moto_url)

    return client


@pytest.fixture
def db(tmp_path: Path, database_url: str) -> Iterator[Database]:
    """A fresh, migrated database of the run's kind for a runner test of its own (no server)."""
    url = fresh_database(database_url, tmp_path)
    upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        database.engine.dispose()
