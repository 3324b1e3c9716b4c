"""`pip install .` must give a package that imports: every third-party module the code imports comes
from a distribution pyproject.toml asks for by name (not only through another package)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Imported only by code that runs in a PySpark line's own environment (runs/driver.py) or with the user's own
# PySpark client (client/cli/pyspark_shell.py, after `sessions connect --pyspark` found one), not the server's.
WORKLOAD_ONLY = {"pyspark"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "sailplane").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"sailplane", "__future__"} - WORKLOAD_ONLY


def test_every_imported_distribution_is_a_declared_dependency() -> None:
    declared = {_normalized(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0])
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        distributions = {_normalized(d) for d in providers.get(module, [])}
        assert distributions, f"{module} is imported but no installed distribution provides it"
        if not distributions & declared:
            missing[module] = sorted(distributions)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
