"""Catalog providers: what each one's `providerConfig` holds, which fields are secret, and how a
catalog becomes Sail configuration (`SAIL_CATALOG__*`, see Sail's catalog guide and reference).

Secret fields are split off before storage (encrypted at rest) and never returned; everything
else is stored and returned as given (camelCase on the wire).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from sailplane.kit.errors import ApiError

Provider = Literal["glue", "iceberg_rest", "unity", "onelake", "local"]
PROVIDERS: tuple[str, ...] = ("glue", "iceberg_rest", "unity", "onelake", "local")

_Text = Field(min_length=1, max_length=2000)
_Database = Field(default=None, min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                  description="Database (namespace) used by queries that do not name one.")
_Secret = Field(default=None, min_length=1, max_length=8192)


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class GlueConfig(_Config):
    """AWS Glue Data Catalog; credentials come from the cluster's cloud account (no secrets here)."""

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="e.g. us-east-1")
    endpoint_url: AnyHttpUrl | None = None
    default_database: str | None = _Database


class IcebergRestConfig(_Config):
    uri: AnyHttpUrl
    warehouse: str | None = Field(default=None, min_length=1, max_length=2000)
    prefix: str | None = Field(default=None, min_length=1, max_length=255)
    default_database: str | None = _Database
    oauth_access_token: str | None = _Secret
    bearer_access_token: str | None = _Secret


class UnityConfig(_Config):
    uri: AnyHttpUrl
    default_catalog: str | None = Field(default=None, min_length=1, max_length=255)
    default_database: str | None = _Database
    token: str | None = _Secret


class OneLakeConfig(_Config):
    url: str = Field(min_length=3, max_length=2000, description="workspace/item-name.ItemType")
    default_database: str | None = _Database
    bearer_token: str | None = _Secret

    @field_validator("url")
    @classmethod
    def _item_location(cls, value: str) -> str:
        if not re.fullmatch(r"[^/\s]+/[^/\s]+\.[A-Za-z]+", value):
            raise ValueError("must look like workspace/item-name.ItemType")
        return value


class LocalConfig(_Config):
    """A warehouse directory on the machine Sail runs on (the local compute backend)."""

    warehouse_dir: str = Field(min_length=1, max_length=4096)
    default_database: str | None = _Database

    @field_validator("warehouse_dir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError("must be an absolute path without '..'")
        return str(path)


MODELS: dict[str, type[_Config]] = {
    "glue": GlueConfig,
    "iceberg_rest": IcebergRestConfig,
    "unity": UnityConfig,
    "onelake": OneLakeConfig,
    "local": LocalConfig,
}
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "glue": (),
    "iceberg_rest": ("oauth_access_token", "bearer_access_token"),
    "unity": ("token",),
    "onelake": ("bearer_token",),
    "local": (),
}


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(["providerConfig", *(str(p) for p in loc)]) if loc else "providerConfig"


def parse_config(provider: str, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate `raw` (wire names) for `provider`; return (public config, secrets), both keyed by
    wire names with unset fields dropped. 422 names the offending field."""
    model = MODELS.get(provider)
    if model is None:
        raise ApiError(422, "validation_failed", f"provider: must be one of {', '.join(PROVIDERS)}",
                       field_errors={"provider": f"must be one of: {', '.join(PROVIDERS)}"})
    try:
        parsed = model.model_validate(dict(raw))
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors():
            fields.setdefault(_field_name(tuple(err.get("loc", ()))), str(err.get("msg", "invalid value")))
        summary = "; ".join(f"{k}: {v}" for k, v in list(fields.items())[:5])
        raise ApiError(422, "validation_failed", f"Invalid provider configuration: {summary}",
                       field_errors=fields) from None
    data = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    secret_names = {to_camel(f) for f in SECRET_FIELDS[provider]}
    secrets = {k: str(v) for k, v in data.items() if k in secret_names}
    public = {k: v for k, v in data.items() if k not in secret_names}
    return public, secrets


def secret_names(provider: str) -> tuple[str, ...]:
    return tuple(to_camel(f) for f in SECRET_FIELDS.get(provider, ()))


# --- local storage confinement ----------------------------------------------------------------

class StorageError(ValueError):
    """A local catalog's warehouse directory is not one a workload may be given."""


@dataclass(frozen=True)
class LocalStorage:
    """Where local catalogs may keep their warehouses (`Settings.warehouse_root`), and the data
    directory they must stay out of."""

    root: Path
    data_dir: Path

    def confine(self, warehouse_dir: str) -> Path:
        """The warehouse directory with symlinks and '..' resolved, if it lies strictly below the
        root (the root itself would hand one catalog every other catalog's tables) and does not
        overlap the data directory, apart from a root inside it (the default,
        `<data_dir>/warehouses`). Workloads get this directory, so it is checked when the catalog
        is saved and again before every run: a symlink made later cannot lead out."""
        resolved = Path(warehouse_dir).resolve()
        root, data_dir = self.root.resolve(), self.data_dir.resolve()
        if root not in resolved.parents:
            raise StorageError(f"must be a directory below the storage root {root} (symlinks and '..' resolved)")
        if overlap(resolved, data_dir) and not (data_dir in root.parents and root in resolved.parents):
            raise StorageError("must not overlap the server's data directory")
        return resolved


def overlap(a: Path, b: Path) -> bool:
    """Whether two resolved directories are the same or one contains the other."""
    return a == b or a in b.parents or b in a.parents


# --- Sail settings ----------------------------------------------------------------------------

def _value(v: Any) -> str:
    """Sail's configuration values: strings quoted (JSON escapes), lists bracketed."""
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(str(v))


def _inline_table(entry: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={_value(v)}" for k, v in entry.items()) + "}"


def sail_catalog_entry(name: str, provider: str, config: Mapping[str, Any],
                       secrets: Mapping[str, str]) -> dict[str, Any]:
    """One element of Sail's `catalog.list` for this catalog (Sail's own option names)."""
    merged = {**config, **secrets}
    if provider == "glue":
        entry: dict[str, Any] = {"type": "glue", "name": name, "region": merged["region"]}
        if merged.get("endpointUrl"):
            entry["endpoint_url"] = merged["endpointUrl"]
    elif provider == "iceberg_rest":
        entry = {"type": "iceberg-rest", "name": name, "uri": merged["uri"]}
        for wire, sail in (("warehouse", "warehouse"), ("prefix", "prefix"),
                           ("oauthAccessToken", "oauth_access_token"), ("bearerAccessToken", "bearer_access_token")):
            if merged.get(wire):
                entry[sail] = merged[wire]
    elif provider == "unity":
        entry = {"type": "unity", "name": name, "uri": merged["uri"]}
        if merged.get("defaultCatalog"):
            entry["default_catalog"] = merged["defaultCatalog"]
        if merged.get("token"):
            entry["token"] = merged["token"]
    elif provider == "onelake":
        entry = {"type": "onelake", "name": name, "url": merged["url"]}
        if merged.get("bearerToken"):
            entry["bearer_token"] = merged["bearerToken"]
    elif provider == "local":
        # Sail keeps table metadata of a local catalog in memory; the warehouse directory is where
        # its managed tables live (see sail_spark_conf).
        database = merged.get("defaultDatabase") or "default"
        entry = {"type": "memory", "name": name, "initial_database": [database],
                 "initial_database_comment": f"warehouse {merged['warehouseDir']}"}
    else:
        raise ValueError(f"unknown catalog provider {provider!r}")
    return entry


def sail_settings_for(entries: Iterable[tuple[str, str, Mapping[str, Any], Mapping[str, str]]],
                      default: str | None = None) -> dict[str, str]:
    """`SAIL_CATALOG__*` for several catalogs (name, provider, config, secrets); the first (or
    `default`) becomes Sail's default catalog, and its default database Sail's default database."""
    items = list(entries)
    if not items:
        return {}
    chosen = next((e for e in items if e[0] == default), items[0]) if default else items[0]
    settings = {
        "SAIL_CATALOG__LIST": "[" + ", ".join(_inline_table(sail_catalog_entry(*e)) for e in items) + "]",
        "SAIL_CATALOG__DEFAULT_CATALOG": chosen[0],
    }
    database = chosen[2].get("defaultDatabase")
    if database:
        settings["SAIL_CATALOG__DEFAULT_DATABASE"] = _value([database])
    return settings


def spark_conf_for(provider: str, config: Mapping[str, Any]) -> dict[str, str]:
    """Spark session configuration a client session should set for this catalog. Sail honours
    `spark.sql.warehouse.dir` for managed tables, which is how a local catalog's tables land in
    its warehouse directory (Sail keeps the table metadata of such a catalog in memory)."""
    if provider == "local":
        return {"spark.sql.warehouse.dir": str(config["warehouseDir"])}
    return {}
