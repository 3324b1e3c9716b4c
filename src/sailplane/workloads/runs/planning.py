"""Planning an attempt: everything a run's execution needs, read from the database when the
attempt starts (the job version's config, its saved query and catalog, the Sail settings and the
Spark line), so later edits of the job never change an attempt half-way. Errors in the
configuration (a deleted saved query, or one no longer shared with any of the job's teams,
likewise its catalog; a local catalog's warehouse outside the storage root; an unknown cluster or
Spark line) are PlanErrors: the run fails without retries, since no retry would help."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sailplane.compute import registry
from sailplane.compute.backend import ExecutionMode, InstanceSpec
from sailplane.compute.environments import SparkEnvironments
from sailplane.compute.libraries import libraries_from_api
from sailplane.data.models import Catalog, Query
from sailplane.data.providers import LocalStorage, StorageError
from sailplane.data.service import CATALOGS, QUERIES, sail_catalog_settings, sail_spark_conf, shared_with
from sailplane.kit.crypto import Encryptor
from sailplane.kit.db import Database
from sailplane.workloads.jobs.models import Job, JobTeam, JobVersion
from sailplane.workloads.runs.models import JobRun

# config.lakesail keys that are ours, not Sail settings.
_LAKESAIL_KEYS = {"executionMode", "maxRetries", "lakesailImageUri", "libraries", "resourceCleanupMode",
                  "sparkVersion"}


class PlanError(Exception):
    """The run cannot be executed as configured (no retry helps)."""


@dataclass
class Plan:
    """Everything one attempt needs, read from the database at its start."""

    run_id: str
    job_id: str
    job_key: str
    attempt: int
    cleanup_mode: str
    max_retries: int
    config: dict[str, Any]
    overrides: dict[str, Any] | None
    source_config: dict[str, Any] | None
    snapshot_commit: str | None
    timeout_seconds: int | None
    sql: str | None = None
    sql_catalog: str | None = None
    sql_schema: str | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)
    instance: InstanceSpec = field(default_factory=lambda: InstanceSpec(instance_id="template"))
    cluster_id: str = registry.LOCAL_CLUSTER_ID  # whose backend runs its Sail server


class Planner:
    """Reads the Plan of a run's attempt (blocking: call it in a worker thread)."""

    def __init__(self, db: Database, *, environments: SparkEnvironments, storage: LocalStorage,
                 encryptor: Encryptor, max_workers: int) -> None:
        self.db = db
        self.environments = environments
        self.storage = storage  # local catalogs' warehouses must lie below its root
        self.encryptor = encryptor
        self.max_workers = max_workers  # cap of Sail workers for executionMode cluster

    def plan(self, run_id: str) -> Plan:
        with self.db.session() as db:
            run = db.get(JobRun, run_id)
            if run is None:
                raise PlanError("the run was deleted")
            job = db.get(Job, run.job_id)
            version = db.scalar(select(JobVersion).where(JobVersion.job_id == run.job_id,
                                                         JobVersion.version == run.job_version))
            if job is None or version is None:
                raise PlanError(f"version {run.job_version} of the job no longer exists")
            config = dict(version.config or {})
            lakesail = dict(config.get("lakesail") or {})
            plan = Plan(run_id=run.id, job_id=job.id, job_key=job.job_key, attempt=run.attempt,
                        cleanup_mode=run.resource_cleanup_mode, max_retries=int(lakesail.get("maxRetries") or 0),
                        config=config, overrides=run.parameters, source_config=version.source_config,
                        snapshot_commit=run.snapshot_commit, timeout_seconds=version.timeout_seconds)
            if registry.registration(version.cluster_id) is None:
                raise PlanError(f"the cluster {version.cluster_id} cannot run jobs on this server")
            plan.cluster_id = version.cluster_id
            settings = {str(k): str(v) for k, v in lakesail.items()
                        if k not in _LAKESAIL_KEYS and isinstance(v, str | int | float | bool)}
            storage: tuple[str, ...] = ()
            query_id = (config.get("sql") or {}).get("queryId")
            if query_id:
                storage = self._query(db, plan, job, query_id, settings)
            mode: ExecutionMode = "cluster" if lakesail.get("executionMode") == "cluster" else "standalone"
            workers = 0
            if mode == "cluster":
                nodes = ((config.get("compute") or {}).get("worker") or {}).get("maxNodes") or 1
                workers = max(1, min(int(nodes), self.max_workers))
            spark = lakesail.get("sparkVersion") or self.environments.default
            if spark not in self.environments.lines:  # validated when saved: a line this server no longer has
                raise PlanError(f"sparkVersion {spark} is not available on this server (it has "
                                f"{', '.join(self.environments.lines)})")
            plan.instance = InstanceSpec(instance_id="template", execution_mode=mode, workers=workers,
                                         settings=settings, libraries=libraries_from_api(lakesail.get("libraries")),
                                         storage=storage, spark_version=str(spark))
            return plan

    def _query(self, db: Session, plan: Plan, job: Job, query_id: str,
               settings: dict[str, str]) -> tuple[str, ...]:
        """The saved query's SQL and catalog settings, only while the query and its catalog are shared
        with one of the job's teams (the rule createJob checks): a query made private, or a team
        removed from the job, fails the run before anything of the query is read into it. A deleted
        query and one not shared look the same to the job's teams. Returns the host directories
        (a local catalog's resolved warehouse) the run's Sail server may use."""
        teams = list(db.scalars(select(JobTeam.team_id).where(JobTeam.job_id == job.id)))
        query = db.scalar(select(Query).where(Query.id == query_id, Query.organization_id == job.organization_id))
        if query is None or not shared_with(db, QUERIES, query.id, teams):
            raise PlanError(f"the saved query {query_id} no longer exists or is not shared with any of the job's "
                            "teams")
        catalog = db.get(Catalog, query.catalog_id) if query.catalog_id else None
        if catalog is not None:
            if not shared_with(db, CATALOGS, catalog.id, teams):
                raise PlanError(f"the catalog of the saved query {query_id} is not shared with any of the job's "
                                "teams")
            try:
                spark_conf = sail_spark_conf(catalog, self.storage)
            except StorageError as exc:
                raise PlanError(f"the warehouseDir of the catalog {catalog.name} {exc}; update the catalog") from None
            plan.sql_catalog = catalog.name
            settings.update(sail_catalog_settings(catalog, self.encryptor))
            plan.spark_conf = spark_conf
        plan.sql, plan.sql_schema = query.sql, query.schema_name
        warehouse = plan.spark_conf.get("spark.sql.warehouse.dir")
        return (warehouse,) if warehouse else ()
