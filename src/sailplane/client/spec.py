"""The operations the client can call, read from `operations.json`: a snapshot of the server's OpenAPI document
written by `scripts/client_spec.py` and checked against the live document by tests/client/test_spec.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


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
def operations() -> dict[str, Operation]:
    raw = json.loads(resources.files("sailplane.client").joinpath("operations.json").read_text())
    return {
        name: Operation(name, op["method"], op["path"], tuple(op["pathParams"]), frozenset(op["query"]),
                        frozenset(op["headers"]), tuple(op["body"]), tuple(op["response"]))
        for name, op in raw.items()
    }


def operation(operation_id: str) -> Operation:
    try:
        return operations()[operation_id]
    except KeyError:
        raise ValueError(f"unknown operation {operation_id!r} (not in the server's OpenAPI document)") from None
