"""The dispatcher's settings (`SAILPLANE_RUNS_<NAME>` or `runs_<name>` in settings.extra): on their
own so the loop, the Sail pool and the lease code read one definition without importing each other."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunnerConfig:
    poll_interval: float = 0.5  # how often ready runs created elsewhere (other processes) are looked for
    lease_seconds: float = 10.0
    renew_interval: float = 1.0
    max_parallel: int = 8  # runs executing at once in this process
    pool_size: int = 1  # idle Sail instances kept ready per recently used settings (0: no pool)
    pool_idle_seconds: float = 600.0  # a settings' pool is dropped after this long without runs
    retain_seconds: float = 600.0  # instances kept by on_success/never are stopped after this long
    retry_backoff: float = 2.0
    stop_grace: float = 5.0
    sail_start_timeout: float = 120.0
    max_workers: int = 8  # cap of Sail workers for executionMode cluster

    @classmethod
    def from_settings(cls, settings: Any) -> RunnerConfig:
        """`SAILPLANE_RUNS_<NAME>` environment variables, or `runs_<name>` in `settings.extra`."""
        values: dict[str, Any] = {}
        extra = getattr(settings, "extra", {}) or {}
        for name, spec in cls.__dataclass_fields__.items():
            raw = extra.get(f"runs_{name}") or os.environ.get(f"SAILPLANE_RUNS_{name.upper()}")
            if raw is None or raw == "":
                continue
            values[name] = int(raw) if spec.type in ("int", int) else float(raw)
        values.setdefault("sail_start_timeout", float(getattr(settings, "compute_start_timeout_seconds", 120.0)))
        values.setdefault("max_workers", int(getattr(settings, "local_max_workers", 8)))
        return cls(**values)
