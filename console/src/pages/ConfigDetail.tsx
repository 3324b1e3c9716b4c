/** One workload config: its common fields and the whole profile as the API shows it (secret values are never
 * shown), and a way to start a new config from it (the API keeps configs as created). */
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { sailOf } from "../configs";
import "../workloads.css";

type Config = components["schemas"]["WorkloadConfigView"];

export default function ConfigDetail() {
  const { configId = "" } = useParams();
  const [config, setConfig] = useState<Config | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/workloads/compute-configs/{workloadConfig}", { params: { path: { workloadConfig: configId } } }))
      .then(setConfig, (e: Error) => setError(e.message));
  }, [configId]);

  const sail = config ? sailOf(config) : {};
  return (
    <section>
      <p><Link to="/configs">← Workload configs</Link></p>
      {error && <p className="error" role="alert">{error}</p>}
      {config === null && !error && <p className="muted" role="status">Loading workload config…</p>}
      {config && (
        <>
          <div className="title-row">
            <h1>{config.name ?? config.id}</h1>
            <Link className="button" to={`/configs/new?from=${config.id}`}>New config from this one</Link>
          </div>
          <dl className="facts">
            <dt>Cluster</dt><dd>{config.clusterId}</dd>
            <dt>Execution mode</dt><dd>{String(sail.executionMode ?? "standalone")}</dd>
            <dt>Spark version</dt><dd>{sail.sparkVersion ? String(sail.sparkVersion) : "the server's default"}</dd>
            <dt>Created</dt><dd>{new Date(config.createdAt).toLocaleString()}</dd>
          </dl>
          <h2>Profile</h2>
          <pre className="logs" data-testid="config-json">{JSON.stringify(
            { config: config.config, endpointLimits: config.endpointLimits }, null, 2)}</pre>
        </>
      )}
    </section>
  );
}
