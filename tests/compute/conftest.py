"""A LocalSailBackend per test, with a check that the test left no Sail process running."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from sailplane.compute.local import LocalSailBackend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LocalSailBackend]:
    local = LocalSailBackend(tmp_path / "data")
    yield local
    leftovers = local.scan()
    asyncio.run(local.stop_orphans(()))  # clean up even when the test failed half-way
    assert leftovers == [], f"test left Sail processes running: {leftovers}"
    assert local.scan() == []
