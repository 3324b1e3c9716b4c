/** One job: its schedule and source, a button to run it now, and its runs (newest first, a page at a time with the
 * API's marker), their status followed live while any of them can still change. */
import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, ApiFailure, call } from "../api/client";
import type { components } from "../api/schema";
import { describeCron, FINAL_RUN_STATES } from "../cron";

type Job = components["schemas"]["JobView"];
type Run = components["schemas"]["JobRunView"];
const POLL_MS = 2000;
const PAGE_SIZE = 20;

export default function JobDetail() {
  const { jobId = "" } = useParams();
  const navigate = useNavigate();
  const [job, setJob] = useState<Job | null>(null);
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [marker, setMarker] = useState<string | null>(null);
  const [older, setOlder] = useState<Run[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [parameters, setParameters] = useState("");
  const [args, setArgs] = useState("");
  const [hold, setHold] = useState(false);
  const [parameterError, setParameterError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/workloads/jobs/{job}", { params: { path: { job: jobId } } })).then(
      (d) => setJob(d.included.jobs.find((j) => j.id === jobId) ?? null), (e: Error) => setError(e.message));
  }, [jobId]);

  const loadRuns = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/workloads/jobs/{job}/runs", {
        params: { path: { job: jobId }, query: { limit: PAGE_SIZE } },
      }));
      const byId = new Map(list.included.jobRuns.map((r) => [r.id, r]));
      setRuns(list.items.map((ref) => byId.get(ref.jobRunId)).filter((r): r is Run => r !== undefined));
      setMarker((m) => (older.length ? m : list.marker ?? null));
    } catch (e) {
      setError((e as Error).message);
    }
  }, [jobId, older.length]);

  const changing = runs?.some((r) => !FINAL_RUN_STATES.has(r.status)) ?? false;
  useEffect(() => {
    void loadRuns();
    if (!changing) return;
    const timer = window.setInterval(() => void loadRuns(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [loadRuns, changing]);

  async function more() {
    if (!marker) return;
    try {
      const list = await call(api.GET("/api/v1/workloads/jobs/{job}/runs", {
        params: { path: { job: jobId }, query: { limit: PAGE_SIZE, marker } },
      }));
      const byId = new Map(list.included.jobRuns.map((r) => [r.id, r]));
      setOlder((o) => [...o, ...list.items.map((ref) => byId.get(ref.jobRunId)).filter((r): r is Run => !!r)]);
      setMarker(list.marker ?? null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  /** Run now (createJobRun), with the run parameters typed in if any: named parameters (a JSON object of strings,
   * merged over the version's), arguments (one per line, replacing the version's `parameters`), and `hold` (the run
   * waits, pending, until released from its page). */
  async function runNow() {
    setError(null);
    setParameterError(null);
    let namedParameters: Record<string, string> | null = null;
    if (parameters.trim()) {
      try {
        const parsed: unknown = JSON.parse(parameters);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
        namedParameters = parsed as Record<string, string>;
      } catch (e) {
        setParameterError(`Not a JSON object: ${(e as Error).message}`);
        return;
      }
    }
    const lines = args.split("\n").map((l) => l.trim()).filter(Boolean);
    setBusy(true);
    try {
      const run = await call(api.POST("/api/v1/workloads/jobs/{job}/runs", {
        params: { path: { job: jobId }, header: { "Idempotency-Key": crypto.randomUUID() } },
        body: { hold, ...(namedParameters ? { namedParameters } : {}), ...(lines.length ? { parameters: [lines] } : {}) },
      }));
      navigate(`/jobs/${jobId}/runs/${run.id}`);
    } catch (e) {
      const fields = e instanceof ApiFailure ? Object.entries(e.fields) : [];
      if (fields.length) setParameterError(fields.map(([k, v]) => `${k}: ${v}`).join("; "));
      else setError((e as Error).message);
      setBusy(false);
    }
  }

  const all = [...(runs ?? []), ...older.filter((o) => !runs?.some((r) => r.id === o.id))];
  const source = job?.config.python?.source ?? job?.config.sql?.source ?? null;
  return (
    <section>
      <p><Link to="/jobs">← Jobs</Link></p>
      {error && <p className="error" role="alert">{error}</p>}
      {job === null && !error && <p className="muted" role="status">Loading job…</p>}
      {job && (
        <>
          <div className="title-row">
            <h1>{job.jobKey}</h1>
            <div className="actions">
              <Link className="button" to={`/jobs/${job.id}/edit`}>Edit</Link>
              <Link className="button" to={`/jobs/${job.id}/versions`}>Versions</Link>
              <button type="button" onClick={() => void runNow()} disabled={busy}>{busy ? "Starting…" : "Run now"}</button>
            </div>
          </div>
          <dl className="facts">
            {job.description && <><dt>Description</dt><dd>{job.description}</dd></>}
            <dt>Status</dt><dd>{job.status}</dd>
            <dt>Kind</dt><dd>{job.config.python ? "Python" : "SQL"}</dd>
            <dt>Schedule</dt><dd>{job.cronExpression
              ? <><code>{job.cronExpression}</code> ({job.cronTimezone ?? "UTC"}): {describeCron(job.cronExpression) ?? ""}</>
              : "By hand only"}</dd>
            <dt>Next run</dt><dd>{job.nextRunAt ? new Date(job.nextRunAt).toLocaleString() : "—"}</dd>
            <dt>Version</dt><dd>{job.currentVersion}{job.draftVersion
              ? <> · <Link to={`/jobs/${job.id}/versions?from=${job.currentVersion}&to=draft`}>a draft (version
                {" "}{job.draftVersion}) is waiting</Link></> : null}</dd>
          </dl>
          <details className="run-options">
            <summary>Run with parameters</summary>
            <label>Named parameters (JSON object, passed as --name=value)
              <input name="namedParameters" placeholder='{"date": "2026-01-31"}' value={parameters}
                onChange={(e) => setParameters(e.target.value)}
                {...(parameterError ? { "aria-invalid": true, "aria-describedby": "parameters-error" } : {})} />
              {parameterError && <span className="field-error" id="parameters-error" role="alert">{parameterError}</span>}
            </label>
            <label>Arguments (one per line, replacing the version's)
              <textarea name="arguments" rows={3} value={args} spellCheck={false} placeholder={"--verbose\n2026-01-31"}
                onChange={(e) => setArgs(e.target.value)} />
            </label>
            <label className="check"><input type="checkbox" checked={hold} onChange={(e) => setHold(e.target.checked)} />
              {" "}Hold: create the run pending, to release from its page</label>
          </details>
          {source && <details><summary>Source</summary><pre className="logs"><code>{source}</code></pre></details>}
        </>
      )}
      <h2>Runs</h2>
      {runs === null && !error && <p className="muted" role="status">Loading runs…</p>}
      {runs !== null && all.length === 0 && <p className="empty">No runs yet. “Run now” starts one; a schedule adds
        them by itself.</p>}
      {all.length > 0 && (
        <table aria-label="Runs">
          <thead><tr><th>Run</th><th>Status</th><th>Trigger</th><th>Created</th><th>Finished</th></tr></thead>
          <tbody>
            {all.map((r) => (
              <tr key={r.id}>
                <td><Link to={`/jobs/${jobId}/runs/${r.id}`}>{r.id}</Link></td>
                <td><span className={`status status-${r.status}`}>{r.status}</span></td>
                <td>{r.trigger}</td>
                <td>{new Date(r.createdAt).toLocaleString()}</td>
                <td>{r.finishedAt ? new Date(r.finishedAt).toLocaleString() : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {changing && <p className="muted">Updates live.</p>}
      {marker && <p><button type="button" onClick={() => void more()}>Older runs</button></p>}
    </section>
  );
}
