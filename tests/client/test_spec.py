"""The client cannot drift from the API: its operation snapshot equals what the live server publishes (every
operationId, method, path, parameter and top-level body field), and the SDK imports no server code."""

from __future__ import annotations

import json
import subprocess
import sys

from sailplane.client import spec
from tests.support.server import LiveServer, openapi_document


def _snapshot_tool():  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "client_spec.py"
    module_spec = importlib.util.spec_from_file_location("client_spec", path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_every_operation_of_the_live_document_is_in_the_client(sdk_server: LiveServer) -> None:
    document = openapi_document(f"{sdk_server.url}/api/v1")
    live = _snapshot_tool().operations(document)
    client = {name: {"method": op.method, "path": op.path, "pathParams": list(op.path_params),
                     "query": sorted(op.query), "headers": sorted(op.headers), "body": list(op.body),
                     "response": list(op.response)} for name, op in spec.operations().items()}
    missing = sorted(set(live) - set(client))
    assert not missing, f"operations missing from the client (run scripts/client_spec.py): {missing}"
    stale = sorted(set(client) - set(live))
    assert not stale, f"operations the server no longer has: {stale}"
    differing = {name: (client[name], live[name]) for name in live if client[name] != live[name]}
    assert not differing, f"operations whose fields differ (run scripts/client_spec.py): {json.dumps(differing)}"
    assert len(client) > 150  # the whole public API, not a few operations


def test_an_unknown_operation_or_parameter_is_refused_before_sending() -> None:
    from sailplane.client.core import Core

    core = Core("http://127.0.0.1:9")
    for bad in (lambda: core.build("listEverything"), lambda: core.build("listTeams", query={"pgae": 2}),
                lambda: core.build("describeTeam"), lambda: core.build("describeTeam", {"team": "A", "x": "B"}),
                lambda: core.build("createTeam", body={"nmae": "typo"})):
        try:
            bad()
        except ValueError:
            continue
        raise AssertionError("a request that does not match the document was built")
    request = core.build("describeJobRun", {"job": "J1", "jobRun": "R/1"})
    assert request.url == "http://127.0.0.1:9/api/v1/workloads/jobs/J1/runs/R%2F1"


def test_importing_the_sdk_loads_no_server_code() -> None:
    code = ("import sys, sailplane.client; "
            "print(','.join(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', 'starlette', "
            "'uvicorn', 'pydantic') or m in ('sailplane.app', 'sailplane.config', 'sailplane.kit')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_shortcut_names_an_operation_of_the_document() -> None:
    import ast
    import inspect

    from sailplane.client import operations as shortcuts

    tree = ast.parse(inspect.getsource(shortcuts))
    named = {node.args[0].value for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "call"
             and node.args and isinstance(node.args[0], ast.Constant)}
    assert len(named) >= 20
    assert named <= set(spec.operations()), sorted(named - set(spec.operations()))


def test_the_answer_shapes_have_exactly_the_documented_fields() -> None:
    from sailplane.client.types import RESPONSES, Organization

    for operation_id, shape in RESPONSES.items():
        documented = set(spec.operation(operation_id).response)
        declared = set(shape.__annotations__)
        assert declared == documented, (operation_id, sorted(declared ^ documented))
    assert "organizations" in RESPONSES["getMe"].__annotations__ and Organization.__annotations__
