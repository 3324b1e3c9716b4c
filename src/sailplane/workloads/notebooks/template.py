"""The source a new notebook starts from: a marimo app whose first cell opens the notebook's Spark
session on Sail (Sailplane sets `SPARK_REMOTE` for the marimo kernel when it starts the notebook)."""

from __future__ import annotations

TEMPLATE = '''import marimo

app = marimo.App()


@app.cell
def _():
    import os

    import marimo as mo
    from pyspark.sql import SparkSession

    # The notebook's Spark Connect session on Sail: Sailplane sets SPARK_REMOTE when it starts the notebook.
    spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).getOrCreate()
    return mo, spark


@app.cell
def _(spark):
    answer = spark.sql("SELECT 40 + 2 AS answer")
    answer.toPandas()
    return (answer,)


if __name__ == "__main__":
    app.run()
'''
