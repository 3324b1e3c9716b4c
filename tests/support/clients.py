"""PySpark clients in processes of their own: the control plane's (a 4.2 client) or that of a Spark line.

A client of a line is that line's pinned environment (`compute.environments`): the same pyspark (or
pyspark-client), pandas below 3 and pyarrow a user of the line installs. Its `pysail` is not used.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

# What a user of any line does with local data: a DataFrame from Python rows (the client first reads
# the local-relation settings from the server), a pandas UDF (runs on Sail, in the server's PySpark)
# and an Arrow pull (toPandas; toArrow where the client has it, from 4.0 on). It connects to the URL it
# is given, or to SPARK_REMOTE (as a job's code does).
LINE_PROBE = textwrap.dedent(
    """
    import json, os, sys
    import pandas as pd
    import pyspark
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import pandas_udf

    spark = SparkSession.builder.remote(sys.argv[1] if len(sys.argv) > 1 else os.environ["SPARK_REMOTE"]).getOrCreate()
    try:
        found = {"client": pyspark.__version__, "server": spark.version}
        df = spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], ["n", "s"])

        @pandas_udf("long")
        def twice(v: pd.Series) -> pd.Series:
            return v * 2

        found["udf"] = [[r.s, r.t] for r in df.select("s", twice("n").alias("t")).orderBy("s").collect()]
        found["toPandas"] = df.orderBy("n").toPandas()["s"].tolist()
        if hasattr(df, "toArrow"):
            found["toArrow"] = df.orderBy("n").toArrow().column("s").to_pylist()
        print(json.dumps(found))
    finally:
        spark.stop()
    """
)
EXPECTED = {"udf": [["a", 2], ["b", 4], ["c", 6]], "toPandas": ["a", "b", "c"]}


def run_script(python: str, source: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `source` as a file. PySpark 4.2.0's client exits at import when its process runs `python -c`
    or stdin: without a `__main__` file it takes itself for a doctest run and looks for a Spark
    installation (pyspark/sql/connect/utils.py). Users run files, notebooks or shells."""
    with tempfile.TemporaryDirectory(prefix="sailplane-client-") as tmp:
        path = Path(tmp) / "client.py"
        path.write_text(source)
        return subprocess.run([python, str(path), *args], env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def probe_line(python: str, url: str) -> dict[str, Any]:
    """LINE_PROBE's findings with the client of `python` against `url` (it must succeed)."""
    out = run_script(python, LINE_PROBE, url)
    assert out.returncode == 0, f"{python}:\n{out.stderr[-4000:]}"
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def assert_probe_ok(found: dict[str, Any], client_line: str, server_line: str) -> None:
    assert found["client"].startswith(client_line + "."), found
    assert found["server"].startswith(server_line + "."), found
    assert {k: found[k] for k in EXPECTED} == EXPECTED, found
    if client_line >= "4.0":
        assert found["toArrow"] == ["a", "b", "c"], found
