/** The PySpark connection snippet for a session: its Spark Connect endpoint with a session token. */
export function pysparkSnippet(grpcEndpoint: string, token: string): string {
  const url = `${grpcEndpoint.replace(/\/+$/, "")}/;token=${token}`;
  return [
    "from pyspark.sql import SparkSession",
    "",
    `spark = SparkSession.builder.remote(${JSON.stringify(url)}).getOrCreate()`,
    'spark.sql("SELECT 1 AS ok").show()',
    "",
  ].join("\n");
}

/** Sessions in these states change no more: the page stops polling them. */
export const FINAL_STATES = new Set(["closed", "failed"]);
