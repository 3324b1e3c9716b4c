"""Provider configuration validation, and the Sail settings a catalog becomes (unit tests plus one
run against a real Sail server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from sailplane.compute.backend import InstanceSpec
from sailplane.compute.local import LocalSailBackend
from sailplane.data.models import Catalog
from sailplane.data.providers import parse_config
from sailplane.data.service import catalog_secrets, sail_catalog_settings, sail_catalogs_settings, sail_spark_conf
from sailplane.kit.crypto import Encryptor
from sailplane.kit.errors import ApiError

KEY = Encryptor("unit-test-key")


def make(name: str, provider: str, raw: dict[str, object]) -> Catalog:
    config, secrets = parse_config(provider, raw)
    c = Catalog(name=name, provider=provider, provider_config=config)
    c.secret_config = KEY.encrypt(__import__("json").dumps(secrets)) if secrets else None
    c.secret_fields = sorted(secrets)
    return c


def test_iceberg_rest_with_token() -> None:
    c = make("lake", "iceberg_rest", {"uri": "https://catalog.example.com/api", "warehouse": "s3://b/w",
                                      "bearerAccessToken": "tok\"en", "defaultDatabase": "sales"})
    assert "bearerAccessToken" not in c.provider_config and c.secret_fields == ["bearerAccessToken"]
    assert catalog_secrets(c, KEY) == {"bearerAccessToken": 'tok"en'}
    assert sail_catalog_settings(c, KEY) == {
        "SAIL_CATALOG__LIST": '[{type="iceberg-rest", name="lake", uri="https://catalog.example.com/api", '
                              'warehouse="s3://b/w", bearer_access_token="tok\\"en"}]',
        "SAIL_CATALOG__DEFAULT_CATALOG": "lake",
        "SAIL_CATALOG__DEFAULT_DATABASE": '["sales"]',
    }


def test_glue_unity_onelake_local() -> None:
    glue = make("g", "glue", {"region": "us-east-1", "endpointUrl": "http://localhost:4566"})
    assert sail_catalog_settings(glue, KEY) == {
        "SAIL_CATALOG__LIST": '[{type="glue", name="g", region="us-east-1", endpoint_url="http://localhost:4566/"}]',
        "SAIL_CATALOG__DEFAULT_CATALOG": "g",
    }
    unity = make("u", "unity", {"uri": "https://uc.example.com/api/2.1/unity-catalog", "token": "s3cr3t",
                                "defaultCatalog": "main"})
    assert sail_catalog_settings(unity, KEY)["SAIL_CATALOG__LIST"] == (
        '[{type="unity", name="u", uri="https://uc.example.com/api/2.1/unity-catalog", default_catalog="main", '
        'token="s3cr3t"}]')
    one = make("f", "onelake", {"url": "ws/lake.Lakehouse", "bearerToken": "bt"})
    assert sail_catalog_settings(one, KEY)["SAIL_CATALOG__LIST"] == (
        '[{type="onelake", name="f", url="ws/lake.Lakehouse", bearer_token="bt"}]')
    local = make("l", "local", {"warehouseDir": "/srv/warehouse", "defaultDatabase": "dev"})
    settings = sail_catalogs_settings([glue, local], KEY, default="l")
    assert settings["SAIL_CATALOG__DEFAULT_CATALOG"] == "l"
    assert settings["SAIL_CATALOG__DEFAULT_DATABASE"] == '["dev"]'
    assert settings["SAIL_CATALOG__LIST"].endswith(
        '{type="memory", name="l", initial_database=["dev"], initial_database_comment="warehouse /srv/warehouse"}]')
    assert sail_catalogs_settings([], KEY) == {}


@pytest.mark.parametrize(("provider", "raw", "field"), [
    ("glue", {}, "providerConfig.region"),
    ("glue", {"region": "nowhere"}, "providerConfig.region"),
    ("iceberg_rest", {"uri": "not a url"}, "providerConfig.uri"),
    ("iceberg_rest", {"uri": "https://x", "colour": "red"}, "providerConfig.colour"),
    ("unity", {"uri": "https://x", "token": ""}, "providerConfig.token"),
    ("onelake", {"url": "no-item"}, "providerConfig.url"),
    ("local", {"warehouseDir": "relative/dir"}, "providerConfig.warehouseDir"),
    ("local", {"warehouseDir": "/a/../b"}, "providerConfig.warehouseDir"),
    ("hive", {}, "provider"),
])
def test_invalid_config_names_the_field(provider: str, raw: dict[str, object], field: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_config(provider, raw)
    assert err.value.status == 422 and field in err.value.field_errors


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
def test_real_sail_accepts_the_settings(tmp_path: Path) -> None:
    """The settings start a real Sail server (local backend) with our catalogs and defaults."""
    local = make("warehouse", "local", {"warehouseDir": str(tmp_path / "wh"), "defaultDatabase": "dev"})
    rest = make("lake", "iceberg_rest", {"uri": "https://catalog.example.com", "bearerAccessToken": 'a"b\\c'})
    glue = make("glue-cat", "glue", {"region": "us-east-1", "endpointUrl": "http://127.0.0.1:9"})
    settings = sail_catalogs_settings([local, rest, glue], KEY, default="warehouse")
    backend = LocalSailBackend(tmp_path / "data")
    handle = asyncio.run(backend.start(InstanceSpec("CATALOGS1", settings=settings)))
    try:
        builder = SparkSession.builder.remote(f"sc://localhost:{handle.port}")
        for key, value in sail_spark_conf(local).items():
            builder = builder.config(key, value)
        spark = builder.create()
        try:
            row = spark.sql("SELECT current_catalog() AS c, current_database() AS d").collect()[0]
            assert (row["c"], row["d"]) == ("warehouse", "dev")
            assert {c.name for c in spark.catalog.listCatalogs()} >= {"warehouse", "lake", "glue-cat"}
            spark.sql("CREATE TABLE t1 USING parquet AS SELECT 1 AS a")
            assert spark.sql("SELECT a FROM t1").collect()[0]["a"] == 1
            assert list((tmp_path / "wh").rglob("*.parquet")), "the managed table is not in the warehouse directory"
        finally:
            spark.stop()
    finally:
        asyncio.run(backend.stop(handle))
        asyncio.run(backend.stop_orphans(()))
