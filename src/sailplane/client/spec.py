"""The operations the client can call, read from `operations.json`: a snapshot of the server's OpenAPI document
written by `scripts/client_spec.py` and checked against the live document by tests/client/test_spec.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    path_params: tuple[str, ...]
    query: frozenset[str]
    headers: frozenset[str]
    body: tuple[str, ...]
    response: tuple[str, ...]


@cache
def _snapshot() -> dict[str, dict[str, Any]]:
    path = Path(__file__).with_name("operations.json")
    if path.is_file():  # an installed or source package: read as a file (importlib.resources' readers cost ~5 ms)
        text = path.read_text()
    else:  # e.g. imported from a zip
        from importlib import resources

        text = resources.files("sailplane.client").joinpath("operations.json").read_text()
    snapshot: dict[str, dict[str, Any]] = json.loads(text)
    return snapshot


def _operation(name: str, op: dict[str, Any]) -> Operation:
    return Operation(name, op["method"], op["path"], tuple(op["pathParams"]), frozenset(op["query"]),
                     frozenset(op["headers"]), tuple(op["body"]), tuple(op["response"]))


@cache
def operations() -> dict[str, Operation]:
    return {name: _operation(name, op) for name, op in _snapshot().items()}


@cache
def operation(operation_id: str) -> Operation:
    """One operation, built on its own: a command's few calls need not build all of them."""
    op = _snapshot().get(operation_id)
    if op is None:
        raise ValueError(f"unknown operation {operation_id!r} (not in the server's OpenAPI document)")
    return _operation(operation_id, op)
