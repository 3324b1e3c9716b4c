"""The process a job run executes in: `python -P .../sailplane/workloads/runs/driver.py sql|entry ...`.

It runs as its own process (started by `sailplane.workloads.runs.execution`) with the Python of the run's
Spark line, which has PySpark but not the control plane, `SPARK_REMOTE` pointing at the Sail server
and stdout/stderr going to the run's log. So it imports nothing of ours and runs as a file: only
the standard library here, PySpark inside the SQL mode.

Modes:

- `sql <spec.json>`: connects to Sail with the Spark Connect client, optionally switches to the
  spec's catalog/schema, and runs the SQL statement by statement (split by `split_sql`). Commands
  (DDL, DML) run as they come; a query that is not the last one is executed and its row count
  logged; the last query (`SELECT`, `WITH`, `VALUES`, `TABLE`, `FROM` or a parenthesised query) is
  the run's result and Sail writes it as Parquet to the output directory. Named parameters are
  bound to `:name` markers of the statements that use them.
- `entry <target> [--package NAME] -- args...`: a Python job given as an entry point.
  `target` is `module:function` (the function is called like a console script:
  `sys.exit(function())` with `sys.argv = [target, *args]`), a console-script name (looked up in the
  checkout's `pyproject.toml` `[project.scripts]`, then in installed distributions and wheels on
  `PYTHONPATH`), or empty with `--package`, which runs the package like `python -m package`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import runpy
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "FROM", "("})
# Statements whose (small) result is worth printing to the log rather than treated as the output.
SHOW_KEYWORDS = frozenset({"SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
_SHOW_ROWS = 50


class SqlSyntaxError(ValueError):
    """The SQL text cannot be split (an unterminated string, identifier or comment)."""


def split_sql(text: str) -> list[str]:
    """Split a SQL script on `;`, ignoring semicolons inside quotes, backticks and comments.

    Strings use `'` or `"` with backslash escapes or doubled quotes (Spark SQL accepts both);
    identifiers use backticks (a doubled backtick escapes one). Comments are `-- ...` to the end of
    the line and `/* ... */` (nested, as in Spark). Statements that are empty or only comments are
    dropped; the others are returned as written, trimmed, without the trailing semicolon.
    """
    statements: list[str] = []
    start = 0
    i = 0
    n = len(text)
    has_code = False  # whether the current statement has anything besides whitespace and comments
    while i < n:
        c = text[i]
        if c in "'\"`":
            quote = c
            j = i + 1
            while True:
                if j >= n:
                    kind = "identifier" if quote == "`" else "string"
                    raise SqlSyntaxError(f"unterminated {kind} starting at line {_line_of(text, i)}")
                if text[j] == "\\" and quote != "`":
                    j += 2
                    continue
                if text[j] == quote:
                    if j + 1 < n and text[j + 1] == quote:  # doubled quote: an escaped quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            has_code = True
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            depth = 0
            j = i
            while True:
                if j >= n:
                    raise SqlSyntaxError(f"unterminated comment starting at line {_line_of(text, i)}")
                if text.startswith("/*", j):
                    depth += 1
                    j += 2
                elif text.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            i = j
        elif c == ";":
            if has_code:
                statements.append(text[start:i].strip())
            start = i + 1
            has_code = False
            i += 1
        else:
            if not c.isspace():
                has_code = True
            i += 1
    if has_code:
        statements.append(text[start:].strip())
    return statements


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def leading_keyword(statement: str) -> str:
    """The first token of a statement after comments, upper-cased (`(` for a parenthesised query)."""
    i = 0
    n = len(statement)
    while i < n:
        if statement[i].isspace():
            i += 1
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            break
    if i < n and statement[i] == "(":
        return "("
    match = re.match(r"[A-Za-z_]+", statement[i:])
    return match.group(0).upper() if match else ""


def is_query(statement: str) -> bool:
    return leading_keyword(statement) in QUERY_KEYWORDS


def _summary(statement: str, limit: int = 100) -> str:
    one_line = " ".join(statement.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."


def _used_args(statement: str, args: dict[str, str]) -> dict[str, str]:
    """The named parameters a statement references as `:name`, so other statements get none."""
    return {k: v for k, v in args.items() if re.search(rf"(?<![:\w]):{re.escape(k)}\b", statement)}


def _out(message: str) -> None:
    print(message, flush=True)


# --- sql mode -------------------------------------------------------------------------------------


def run_sql(spec: dict[str, Any]) -> int:
    sql = spec.get("sql")
    if spec.get("sqlFile"):
        sql = Path(spec["sqlFile"]).read_text()
    if not sql:
        _out("error: the job has no SQL to run")
        return 2
    try:
        statements = split_sql(sql)
    except SqlSyntaxError as exc:
        _out(f"error: {exc}")
        return 2
    if not statements:
        _out("error: the SQL has no statements")
        return 2
    output = spec["output"]
    args: dict[str, str] = spec.get("args") or {}
    queries = [i for i, s in enumerate(statements) if is_query(s)]
    result_index = queries[-1] if queries else None

    started = time.monotonic()
    from pyspark.sql import SparkSession  # the heavy import, only in the driver process

    builder = SparkSession.builder.remote(os.environ["SPARK_REMOTE"])
    for key, value in (spec.get("conf") or {}).items():
        builder = builder.config(key, value)
    spark = builder.create()
    _out(f"connected to Sail in {time.monotonic() - started:.2f} s; {len(statements)} statement(s)")
    try:
        for kind, name, use in (("catalog", spec.get("catalog"), spark.catalog.setCurrentCatalog),
                                ("schema", spec.get("schema"), spark.catalog.setCurrentDatabase)):
            if not name:
                continue
            try:
                use(name)
            except Exception as exc:
                _out(f"error: cannot use {kind} {name!r}: {_error_text(exc)}")
                return 1
        for index, statement in enumerate(statements):
            t0 = time.monotonic()
            _out(f"[{index + 1}/{len(statements)}] {_summary(statement)}")
            try:
                used = _used_args(statement, args)
                df = spark.sql(statement, args=used) if used else spark.sql(statement)
                if index == result_index:
                    df.write.mode("overwrite").parquet(output)
                    rows = spark.read.parquet(output).count()
                    _out(f"  wrote {rows} row(s) to {output} ({time.monotonic() - t0:.2f} s)")
                elif is_query(statement):
                    _out(f"  {df.count()} row(s) ({time.monotonic() - t0:.2f} s)")
                elif leading_keyword(statement) in SHOW_KEYWORDS:
                    for row in df.limit(_SHOW_ROWS).collect():
                        _out("  " + " | ".join("" if v is None else str(v) for v in row))
                    _out(f"  ok ({time.monotonic() - t0:.2f} s)")
                else:
                    _out(f"  ok ({time.monotonic() - t0:.2f} s)")  # commands run eagerly in spark.sql
            except Exception as exc:  # a SQL error: the message is what the user needs, not our traceback
                _out(f"error in statement {index + 1} (line {_statement_line(sql, statement)}): {_error_text(exc)}")
                return 1
        if result_index is None:
            _out("no query in the SQL: nothing written to the output")
    finally:
        spark.stop()
    _out(f"done in {time.monotonic() - started:.2f} s")
    return 0


def _statement_line(sql: str, statement: str) -> int:
    at = sql.find(statement)
    return _line_of(sql, at) if at >= 0 else 0


def _error_text(exc: BaseException, limit: int = 4000) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


# --- entry mode ------------------------------------------------------------------------------------


def _project_scripts(directory: Path) -> dict[str, str]:
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    scripts = data.get("project", {}).get("scripts", {})
    return {str(k): str(v) for k, v in scripts.items()} if isinstance(scripts, dict) else {}


def resolve_entry_point(target: str, package: str | None, cwd: Path) -> Callable[[], Any]:
    """The callable for `module:function`, a console-script name, or `package` alone (`python -m`)."""
    if not target:
        if not package:
            raise LookupError("neither an entry point nor a package name was given")
        name = package

        def run_package() -> None:
            runpy.run_module(name, run_name="__main__", alter_sys=True)

        return run_package
    if ":" not in target:
        spec = _project_scripts(cwd).get(target)
        if spec is None:
            found = importlib.metadata.entry_points(group="console_scripts", name=target)
            if not found:
                raise LookupError(f"no console script named {target!r}")
            spec = next(iter(found)).value
        target = spec
    module_name, _, attr = target.partition(":")
    module_name, attr = module_name.strip(), attr.split("[")[0].strip()  # drop `[extras]`
    if not module_name or not attr:
        raise LookupError(f"invalid entry point {target!r}: expected module:function")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise LookupError(f"entry point {target!r} is not callable")
    return obj


def run_entry(target: str, package: str | None, args: Sequence[str]) -> int:
    try:
        func = resolve_entry_point(target, package, Path.cwd())
    except (LookupError, ImportError, AttributeError) as exc:
        _out(f"error: cannot load entry point {target or package!r}: {exc}")
        return 2
    sys.argv = [target or package or "", *args]
    result = func()
    if result is None or isinstance(result, int):
        return result or 0
    _out(str(result))  # like sys.exit("message")
    return 1


# --- command line ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "sql":
        spec = json.loads(Path(argv[1]).read_text())
        return run_sql(spec)
    if argv and argv[0] == "entry" and "--" in argv:
        sep = argv.index("--")
        head, args = argv[1:sep], argv[sep + 1 :]
        package = None
        if len(head) == 3 and head[1] == "--package":
            package = head[2]
        elif len(head) != 1:
            head = []
        if head:
            return run_entry(head[0], package, args)
    print("usage: python -P driver.py sql SPEC.json | entry TARGET [--package NAME] -- ARGS...",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
