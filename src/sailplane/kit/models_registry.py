"""Imports every domain's models so metadata (Alembic, tests) sees all tables."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "sailplane.auth.models",
    "sailplane.org.models",
    "sailplane.teams.models",
    "sailplane.service_accounts.models",
    "sailplane.policies.models",
    "sailplane.invites.models",
    "sailplane.audit.models",
    "sailplane.workloads.models",
    "sailplane.mfa.models",
    "sailplane.identity.models",
    "sailplane.sso.models",
    "sailplane.data.models",
    "sailplane.jobs.models",
    "sailplane.runs.models",
    "sailplane.workloads.notebooks.models",
)


def load_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
