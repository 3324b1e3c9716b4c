/** Create a workload config: the common fields as a form (name, team, cluster, execution mode, Spark version),
 * everything else (libraries, environment, compute, retries, endpoint limits) in a JSON editor checked as JSON
 * before it is sent. The API validates; its field errors are shown beside the fields they are about, the rest
 * beside the JSON editor. `?from=ID` starts from an existing config (the API has no update: a changed profile is a
 * new config). */
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { CONFIG_FORM_FIELDS, configBody, extraOf, sailOf, SPARK_VERSIONS } from "../configs";
import { fieldHelpers, mapFieldErrors, parseObject, type Fields } from "../fields";
import "../workloads.css";

type TeamItem = components["schemas"]["TeamItem"];

export default function ConfigForm() {
  const [params] = useSearchParams();
  const from = params.get("from");
  const navigate = useNavigate();
  const [teams, setTeams] = useState<TeamItem[] | null>(null);
  const [name, setName] = useState("");
  const [teamId, setTeamId] = useState("");
  const [clusterId, setClusterId] = useState("LOCAL");
  const [executionMode, setExecutionMode] = useState("standalone");
  const [sparkVersion, setSparkVersion] = useState("");
  const [extra, setExtra] = useState(JSON.stringify(extraOf(null), null, 2));
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { fieldError, described } = fieldHelpers(errors);

  useEffect(() => {
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } })).then((list) => {
      setTeams(list.items);
      setTeamId((t) => t || list.items[0]?.team.id || "");
    }, (e: Error) => setError(e.message));
  }, []);

  useEffect(() => {
    if (!from) return;
    call(api.GET("/api/v1/workloads/compute-configs/{workloadConfig}", { params: { path: { workloadConfig: from } } }))
      .then((c) => {
        const sail = sailOf(c);
        setName(`${c.name ?? "config"}-copy`);
        setTeamId(c.teamId);
        setClusterId(c.clusterId);
        setExecutionMode(String(sail.executionMode ?? "standalone"));
        setSparkVersion(sail.sparkVersion ? String(sail.sparkVersion) : "");
        setExtra(JSON.stringify(extraOf(c), null, 2));
      }, (e: Error) => setError(e.message));
  }, [from]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setError(null);
    const parsed = parseObject(extra);
    if ("problem" in parsed) {
      setErrors({ extra: parsed.problem });
      return;
    }
    setBusy(true);
    try {
      const body = configBody({ name, teamId, clusterId, executionMode, sparkVersion }, parsed.value);
      const created = await call(api.POST("/api/v1/workloads/compute-configs", {
        body: body as components["schemas"]["CreateWorkloadConfigRequest"],
      }));
      navigate(`/configs/${created.id}`);
    } catch (err) {
      setErrors(mapFieldErrors(err, CONFIG_FORM_FIELDS, "extra"));
      setError((err as Error).message);
      setBusy(false);
    }
  }

  if (teams !== null && teams.length === 0) {
    return <section><h1>New workload config</h1>
      <p className="empty">Workload configs belong to a team: <Link to="/teams">create a team</Link> first.</p></section>;
  }
  return (
    <section>
      <p><Link to="/configs">← Workload configs</Link></p>
      <h1>New workload config</h1>
      <form className="stack" onSubmit={submit} aria-label="Create workload config" noValidate>
        <label>Name
          <input name="name" maxLength={255} value={name} onChange={(e) => setName(e.target.value)}
            {...described("name")} />
          {fieldError("name")}
        </label>
        <label>Team
          <select name="teamId" value={teamId} onChange={(e) => setTeamId(e.target.value)} {...described("teamId")}>
            {(teams ?? []).map(({ team: t }) => <option key={t.id} value={t.id}>{t.name}</option>)}
          </select>
          <span className="hint">Its members' sessions and notebooks can use it. The team never changes.</span>
          {fieldError("teamId")}
        </label>
        <label>Cluster
          <input name="clusterId" value={clusterId} onChange={(e) => setClusterId(e.target.value)}
            {...described("clusterId")} />
          <span className="hint">LOCAL: this server's own machine.</span>
          {fieldError("clusterId")}
        </label>
        <label>Execution mode
          <select name="executionMode" value={executionMode} onChange={(e) => setExecutionMode(e.target.value)}
            {...described("executionMode")}>
            <option value="standalone">Standalone (one Sail server)</option>
            <option value="cluster">Cluster (a driver and workers)</option>
          </select>
          {fieldError("executionMode")}
        </label>
        <label>Spark version
          <select name="sparkVersion" value={sparkVersion} onChange={(e) => setSparkVersion(e.target.value)}
            {...described("sparkVersion")}>
            <option value="">The server's default</option>
            {SPARK_VERSIONS.map((v) => <option key={v} value={v}>{v}</option>)}
          </select>
          {fieldError("sparkVersion")}
        </label>
        <label>Other settings (JSON)
          <textarea name="extra" rows={12} value={extra} spellCheck={false} onChange={(e) => setExtra(e.target.value)}
            {...described("extra")} />
          <span className="hint">{"In \"sail\": libraries, extraEnv (a secret as {\"type\": \"secret\", \"value\": …}), compute, "
            + "maxRetries, lakesailImageUri; and endpointLimits, as in the API's createWorkloadConfig body."}</span>
          {fieldError("extra")}
        </label>
        {error && Object.keys(errors).length === 0 && <p className="error" role="alert">{error}</p>}
        <div className="actions">
          <button type="submit" disabled={busy || !teamId}>{busy ? "Creating…" : "Create workload config"}</button>
        </div>
      </form>
    </section>
  );
}
