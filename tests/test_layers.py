"""The import layering stays true: import-linter's contracts (pyproject.toml) fail the suite when broken.

scripts/test.sh runs `lint-imports` too; this test makes a plain pytest run (and CI) catch a new cycle.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

from tests.layering import strongly_connected

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def _lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: install requirements-dev.txt"
    return found


def test_import_contracts_are_kept() -> None:
    # This checkout's source, whatever an editable install points at.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([_lint_imports(), "--no-cache", "--no-logo", "--config", str(ROOT / "pyproject.toml")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_cycle_check_finds_cycles_through_any_number_of_modules() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a"), ("p.e", "p.f"),
                               ("p.f", "p.e"), ("p.g", "p.g.h")]:
        graph.add_import(importer=importer, imported=imported)
    assert strongly_connected(graph, graph.modules) == [["p.a", "p.b", "p.c"], ["p.e", "p.f"]]


def test_no_private_name_is_imported_from_another_module() -> None:
    """A name another module needs is public (or lives where both can reach it): `_name` stays private."""
    found = []
    for path in sorted((SRC / "sailplane").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("sailplane"):
                found += [f"{path.relative_to(SRC)}:{node.lineno} {node.module}.{alias.name}"
                          for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not found, found


AUTHZ = Path("sailplane/iam/auth/authz.py")
RAW_GRANTS = {"org_permissions", "all_teams"}  # what a caller's permissions are made of (auth.authz reads them)


def test_authorization_rules_live_in_auth_authz() -> None:
    """Route checks and list filters answer through auth.authz: no other module defines a visibility
    rule (`*visible_clause`, `*sees_all*`) or reads a principal's raw grants to decide for itself."""
    found = []
    for path in sorted((SRC / "sailplane").rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel == AUTHZ:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and ("visible_clause" in node.name or "sees_all" in node.name):
                found.append(f"{rel}:{node.lineno} defines {node.name}")
            if (isinstance(node, ast.Attribute) and node.attr in RAW_GRANTS and isinstance(node.value, ast.Name)
                    and node.value.id in ("principal", "caller", "who")):
                found.append(f"{rel}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not found, found


# Who commits: a request (auth.deps.get_db, through kit.db) or a background loop's iteration, never a service.
COMMIT_OWNERS = {
    Path("sailplane/kit/db.py"),  # the unit-of-work helpers: commit_request, checkpoint, commit_before_raising
    Path("sailplane/cli.py"),  # a command is its own unit of work
    Path("sailplane/workloads/controller.py"),  # background loops: one commit per iteration or step
    Path("sailplane/workloads/notebooks/controller.py"),
    Path("sailplane/workloads/runs/records.py"),
    Path("sailplane/workloads/runs/claiming.py"),
    Path("sailplane/workloads/runs/scheduler.py"),
    Path("sailplane/workloads/runs/runtime.py"),
    Path("sailplane/workloads/runs/dispatcher.py"),
    Path("sailplane/infra/operations/runner.py"),  # the operation runner: one commit per claim or step end
    Path("sailplane/notifications/sender.py"),  # the delivery sender: one commit per claim or attempt end
    Path("sailplane/infra/connections/sync.py"),  # a sync step's end, recorded on its connection
    Path("sailplane/infra/stacked.py"),  # a network's or cluster's operation's end, recorded on it
}


def test_only_the_unit_of_work_commits() -> None:
    """Services flush; the request (or the loop iteration) that called them commits once, so a write either
    happens whole or not at all. A deliberate early commit goes through kit.db (`checkpoint`,
    `commit_before_raising`), and what must wait for the commit through `kit.db.after_commit`."""
    found = []
    for path in sorted((SRC / "sailplane").rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel in COMMIT_OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
                found.append(f"{rel}:{node.lineno}")
    assert not found, found
    assert all((SRC / p).exists() for p in COMMIT_OWNERS), "an allowed owner moved: update COMMIT_OWNERS"
