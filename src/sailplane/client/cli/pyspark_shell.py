"""The PySpark shell of `sailplane sessions connect --pyspark` when Spark's `pyspark` launcher is not on PATH: run
as `python -i -m sailplane.client.cli.pyspark_shell` with SPARK_REMOTE set, it leaves `spark` (a Spark Connect
session on the Sail session) to the interactive prompt. A module, not `python -c`: PySpark 4.2's client exits at
import in a `__main__` without a spec or file (it takes itself for a doctest run), and pyspark-client has no
`pyspark.shell`."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).getOrCreate()
sql = spark.sql
print(f"Spark Connect {spark.version} at {urlsplit(os.environ['SPARK_REMOTE']).netloc.split('/')[0]}.")
print("SparkSession available as 'spark'.")
