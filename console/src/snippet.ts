/** The PySpark connection snippet for a session: its Spark Connect endpoint with a session token. */

/** Whether the gateway speaks TLS: the server says so in a meta tag of the page (`sailplane-gateway-tls`). */
export function gatewayTls(doc: Pick<Document, "querySelector"> = document): boolean {
  return doc.querySelector('meta[name="sailplane-gateway-tls"]')?.getAttribute("content") === "true";
}

export function pysparkSnippet(grpcEndpoint: string, token: string, tls: boolean): string {
  const url = `${grpcEndpoint.replace(/\/+$/, "")}/;${tls ? "use_ssl=true;" : ""}token=${token}`;
  return [
    "from pyspark.sql import SparkSession",
    "",
    ...(tls
      ? ["# A self-signed gateway certificate (sailplane serve's default): set GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
         "# to it in the environment first (the server prints where it is).", ""]
      : []),
    `spark = SparkSession.builder.remote(${JSON.stringify(url)}).getOrCreate()`,
    'spark.sql("SELECT 1 AS ok").show()',
    "",
  ].join("\n");
}

/** Sessions in these states change no more: the page stops polling them. */
export const FINAL_STATES = new Set(["closed", "failed"]);
