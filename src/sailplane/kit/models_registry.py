"""Imports every domain's models so metadata (Alembic, tests) sees all tables."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "sailplane.iam.auth.models",
    "sailplane.tenancy.org.models",
    "sailplane.tenancy.teams.models",
    "sailplane.tenancy.service_accounts.models",
    "sailplane.tenancy.policies.models",
    "sailplane.tenancy.invites.models",
    "sailplane.tenancy.audit.models",
    "sailplane.workloads.models",
    "sailplane.iam.mfa.models",
    "sailplane.iam.identity.models",
    "sailplane.iam.sso.models",
    "sailplane.data.models",
    "sailplane.workloads.jobs.models",
    "sailplane.workloads.runs.models",
    "sailplane.workloads.notebooks.models",
    "sailplane.infra.operations.models",
    "sailplane.infra.connections.models",
    "sailplane.infra.networks.models",
    "sailplane.infra.clusters.models",
    "sailplane.notifications.models",
)


def load_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
