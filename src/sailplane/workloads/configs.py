"""Workload configs (the UI's compute profiles): one team's recipe for a Sail compute instance.

Visibility: organization admins see every config; everyone else sees the configs of the teams
they belong to (team admins and members alike). Inline configs, made for a single session
request, are never listed but can be described by whoever can see their team.

`sail.extraEnv` values are plain strings (stored and shown as given) or `{"type", "value"}` objects.
A `secret` value is stored as `{"type": "secret", "encryptedValue": <kit.crypto.Encryptor ciphertext>}`,
read back as `{"type": "secret"}` (schemas.SailConfigView) and decrypted only into the workload's
environment (`instance_spec`). An inline config's content hash covers a secret through a keyed digest,
so identical inline configs still share an instance without the hash revealing the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from sailplane.compute import registry as compute_registry
from sailplane.compute.backend import InstanceSpec
from sailplane.compute.libraries import libraries_from_api
from sailplane.config import Settings
from sailplane.iam.auth import authz
from sailplane.iam.auth.principal import Principal
from sailplane.infra.clusters.service import LOCAL_CLUSTER_ID, Cluster, cluster_for_teams
from sailplane.kit.context import RequestContext
from sailplane.kit.crypto import Encryptor
from sailplane.kit.errors import conflict, forbidden, invalid, not_found
from sailplane.kit.pagination import MarkerPage, apply_marker, split_marker
from sailplane.tenancy.audit import service as audit
from sailplane.tenancy.teams.service import get_team
from sailplane.workloads.models import WorkloadConfig
from sailplane.workloads.schemas import (
    CreateWorkloadConfigRequest,
    EndpointLimits,
    InlineWorkloadConfig,
    SailConfig,
    WorkloadConfigBody,
)


def _visible_stmt(principal: Principal) -> Select[Any]:
    stmt = select(WorkloadConfig).where(WorkloadConfig.organization_id == principal.organization_id)
    clause = authz.configs_visible_to(principal)
    return stmt if clause is None else stmt.where(clause)


def list_configs(db: Session, principal: Principal, team_id: str | None,
                 page: MarkerPage) -> tuple[list[WorkloadConfig], str | None]:
    stmt = _visible_stmt(principal).where(WorkloadConfig.inline.is_(False))
    if team_id is not None:
        stmt = stmt.where(WorkloadConfig.team_id == team_id)
    rows = list(db.scalars(apply_marker(stmt, WorkloadConfig.id, page)))
    return split_marker(rows, page)


def find_config(db: Session, principal: Principal, config_id: str) -> WorkloadConfig | None:
    """The config if the caller can see it, else None (a session naming it gets 422, as unknown)."""
    found: WorkloadConfig | None = db.scalar(_visible_stmt(principal).where(WorkloadConfig.id == config_id))
    return found


def get_config(db: Session, principal: Principal, config_id: str) -> WorkloadConfig:
    """The config if the caller can see it; 404 otherwise (also for other organizations)."""
    found = find_config(db, principal, config_id)
    if found is None:
        raise not_found("workload config")
    return found


def _content_hash(workload_type: str, cluster_id: str, config: dict[str, Any], limits: dict[str, int]) -> str:
    canonical = json.dumps([workload_type, cluster_id, config, limits], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _cluster(db: Session, principal: Principal, cluster_id: str, team_id: str, field_name: str) -> Cluster:
    """The cluster if it is shared with the config's team (else 422; one the caller cannot see is unknown)."""
    return cluster_for_teams(db, principal, cluster_id, [team_id], field_name)


def _check_for_cluster(cluster: Cluster, sail: SailConfig, settings: Settings, prefix: str) -> None:
    """What a cluster can run: the local backend runs workers as processes on this machine."""
    if cluster.backend != "local":
        return
    if sail.worker_count() > settings.local_max_workers:
        raise invalid(f"{prefix}.sail.compute.worker.maxNodes",
                      f"the local cluster runs at most {settings.local_max_workers} workers")
    libraries = [lib.model_dump(mode="json", exclude_none=True) for lib in sail.libraries]
    problem = compute_registry.limitation(cluster.id, sail.lakesail_image_uri, libraries)
    if problem is not None:
        raise invalid(f"{prefix}.sail.{problem[0]}", problem[1])


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "secret"


def _normalized(body: WorkloadConfigBody, limits: EndpointLimits | None,
                secret_key: str) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
    """(config as stored, endpoint limits, config as hashed): secrets encrypted in the first, keyed digests
    in the last; without secrets both are the request's config as it was always stored."""
    config = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    endpoint_limits = limits.model_dump(by_alias=True, exclude_none=True) if limits else {}
    env: dict[str, Any] = config.get("sail", {}).get("extraEnv") or {}
    if not any(_is_secret(v) for v in env.values()):
        return config, endpoint_limits, config
    encryptor = Encryptor(secret_key)
    stored, hashed = dict(env), dict(env)
    for name, value in env.items():
        if _is_secret(value):
            stored[name] = {"type": "secret", "encryptedValue": encryptor.encrypt(value["value"])}
            digest = hmac.new(secret_key.encode(), value["value"].encode(), hashlib.sha256).hexdigest()
            hashed[name] = {"type": "secret", "digest": digest}
    return ({**config, "sail": {**config["sail"], "extraEnv": stored}}, endpoint_limits,
            {**config, "sail": {**config["sail"], "extraEnv": hashed}})


def create_config(db: Session, principal: Principal, body: CreateWorkloadConfigRequest, ctx: RequestContext,
                  settings: Settings) -> WorkloadConfig:
    get_team(db, principal, body.team_id)
    if not principal.has("CanManageWorkloadConfigs", body.team_id):
        raise forbidden("This operation needs the CanManageWorkloadConfigs permission in this team.")
    cluster = _cluster(db, principal, body.cluster_id or LOCAL_CLUSTER_ID, body.team_id, "clusterId")
    _check_for_cluster(cluster, body.config.sail, settings, "config")
    taken = db.scalar(select(WorkloadConfig.id).where(WorkloadConfig.team_id == body.team_id,
                                                       WorkloadConfig.name == body.name).limit(1))
    if taken is not None:
        raise conflict("workload_config_name_taken", "A workload config with this name already exists in the team.")
    config, limits, hashed = _normalized(body.config, body.endpoint_limits, settings.secret_key)
    row = WorkloadConfig(
        organization_id=principal.organization_id, team_id=body.team_id, name=body.name, inline=False,
        workload_type=body.workload_type, cluster_id=cluster.id, config=config, endpoint_limits=limits,
        content_hash=_content_hash(body.workload_type, cluster.id, hashed, limits),
        created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(row)
    db.flush()
    audit.record(db, ctx, principal, "workload_config.create", "workload_config", row.id,
                 details={"name": row.name, "teamId": row.team_id, "clusterId": row.cluster_id})
    db.flush()
    return row


def resolve_inline_config(db: Session, principal: Principal, team_id: str, inline: InlineWorkloadConfig | None,
                          settings: Settings) -> WorkloadConfig:
    """The team's anonymous config with this exact content, created (not committed) when new.

    Reusing identical inline configs is what lets `allowShared` find a running instance for them.
    """
    inline = inline or InlineWorkloadConfig()
    cluster = _cluster(db, principal, inline.cluster_id or LOCAL_CLUSTER_ID, team_id, "workloadConfig.clusterId")
    _check_for_cluster(cluster, inline.config.sail, settings, "workloadConfig.config")
    config, limits, hashed = _normalized(inline.config, inline.endpoint_limits, settings.secret_key)
    digest = _content_hash(inline.workload_type, cluster.id, hashed, limits)
    found = db.scalar(select(WorkloadConfig).where(
        WorkloadConfig.team_id == team_id, WorkloadConfig.inline.is_(True), WorkloadConfig.content_hash == digest,
    ).order_by(WorkloadConfig.id).limit(1))
    if found is not None:
        return found
    row = WorkloadConfig(
        organization_id=principal.organization_id, team_id=team_id, name=None, inline=True,
        workload_type=inline.workload_type, cluster_id=cluster.id, config=config, endpoint_limits=limits,
        content_hash=digest, created_by=principal.actor_id, updated_by=principal.actor_id,
    )
    db.add(row)
    db.flush()
    return row


def sail_config(config: WorkloadConfig) -> SailConfig:
    """The stored settings without extraEnv (whose secrets are stored encrypted: `workload_env` reads them)."""
    stored = dict(config.config)
    stored["sail"] = {**(stored.get("sail") or {}), "extraEnv": {}}
    return WorkloadConfigBody.model_validate(stored).sail


def workload_env(config: WorkloadConfig, encryptor: Encryptor) -> dict[str, str]:
    """extraEnv as the workload gets it: plain strings as stored, typed values' `value`, secrets decrypted."""
    env: dict[str, Any] = (config.config.get("sail") or {}).get("extraEnv") or {}
    out: dict[str, str] = {}
    for name, value in env.items():
        if isinstance(value, str):
            out[name] = value
        elif _is_secret(value):
            out[name] = encryptor.decrypt(value["encryptedValue"])
        else:
            out[name] = str(value["value"])
    return out


def instance_spec(config: WorkloadConfig, instance_id: str, encryptor: Encryptor) -> InstanceSpec:
    """What the compute backend runs for this config: execution mode, workers, extra environment (secrets
    decrypted with `encryptor`), Sail settings (maxRetries), libraries and the Spark line (None: the default
    line of the server that starts it)."""
    sail = sail_config(config)
    settings = {} if sail.max_retries is None else {"cluster.task_max_attempts": str(sail.max_retries + 1)}
    return InstanceSpec(instance_id=instance_id, execution_mode=sail.execution_mode, workers=sail.worker_count(),
                        extra_env=workload_env(config, encryptor), settings=settings,
                        spark_version=sail.spark_version,
                        libraries=libraries_from_api([lib.model_dump(mode="json", exclude_none=True)
                                                      for lib in sail.libraries]))


def session_limit(config: WorkloadConfig) -> int:
    """Most open sessions on one shared instance of this config (0: no limit)."""
    return int(config.endpoint_limits.get("spark_connect") or 0)

