/** One run: its status followed live, its driver output that follows while it runs (getJobRunLogs, asked again
 * from the `LakeSail-Log-Offset` it answered until `LakeSail-Run-Status` is final and no more text comes), cancel
 * and retry, and where its results are. */
import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { FINAL_RUN_STATES, RETRYABLE_RUN_STATES } from "../cron";

type Run = components["schemas"]["JobRunView"];
const POLL_MS = 1500;
const LOG_MS = 1000;

export default function RunDetail() {
  const { jobId = "", runId = "" } = useParams();
  const [run, setRun] = useState<Run | null>(null);
  const [logs, setLogs] = useState("");
  const [generation, setGeneration] = useState(0);  // a retry starts following the output again
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const logBox = useRef<HTMLPreElement>(null);
  const path = { job: jobId, jobRun: runId };

  const load = useCallback(async () => {
    try {
      setRun(await call(api.GET("/api/v1/workloads/jobs/{job}/runs/{jobRun}", { params: { path: { job: jobId, jobRun: runId } } })));
    } catch (e) {
      setError((e as Error).message);
    }
  }, [jobId, runId]);

  const final = run !== null && FINAL_RUN_STATES.has(run.status);
  useEffect(() => {
    void load();
    if (final) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [load, final]);

  useEffect(() => {
    let stopped = false;
    let offset = 0;
    let timer = 0;
    let seenStatus = "";
    setLogs("");
    async function next() {
      try {
        const { data, error: failed, response } = await api.GET("/api/v1/workloads/jobs/{job}/runs/{jobRun}/logs", {
          params: { path: { job: jobId, jobRun: runId }, query: { offset } }, parseAs: "text",
        });
        if (stopped) return;
        if (failed !== undefined || !response.ok) throw new Error("The run's output could not be read.");
        const text = typeof data === "string" ? data : "";
        offset = Number(response.headers.get("LakeSail-Log-Offset") ?? offset + new Blob([text]).size);
        if (text) setLogs((l) => l + text);
        const status = response.headers.get("LakeSail-Run-Status") ?? "";
        if (status !== seenStatus) {  // the output says the run moved on: show it now, not at the next poll
          seenStatus = status;
          void load();
        }
        if (FINAL_RUN_STATES.has(status) && !text) return;  // all of it has been read
        timer = window.setTimeout(() => void next(), text ? 200 : LOG_MS);
      } catch (e) {
        if (!stopped) setError((e as Error).message);
      }
    }
    void next();
    return () => { stopped = true; window.clearTimeout(timer); };
  }, [jobId, runId, generation, load]);

  useEffect(() => {
    const box = logBox.current;
    if (box) box.scrollTop = box.scrollHeight;  // follow the end, like `tail -f`
  }, [logs]);

  async function act(action: "cancel" | "retry" | "release") {
    setBusy(true);
    setError(null);
    try {
      const next = action === "cancel"
        ? await call(api.POST("/api/v1/workloads/jobs/{job}/runs/{jobRun}/cancel", { params: { path } }))
        : action === "release"  // a held run: now it may start
        ? await call(api.POST("/api/v1/workloads/jobs/{job}/runs/{jobRun}/ready", { params: { path } }))
        : await call(api.POST("/api/v1/workloads/jobs/{job}/runs/{jobRun}/retry", { params: { path }, body: { hold: false } }));
      setRun(next);
      if (action === "retry") setGeneration((g) => g + 1);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section>
      <p><Link to={`/jobs/${jobId}`}>← Job</Link></p>
      <h1>Run {runId}</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {run === null && !error && <p className="muted" role="status">Loading run…</p>}
      {run && (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd><span className={`status status-${run.status}`} data-testid="run-status" aria-live="polite">{run.status}</span>
              {!final && <span className="muted"> (updates live)</span>}</dd>
            {run.statusMessage && <><dt>Message</dt><dd>{run.statusMessage}</dd></>}
            <dt>Trigger</dt><dd>{run.trigger}</dd>
            <dt>Job version</dt><dd>{run.jobVersion}</dd>
            <dt>Created</dt><dd>{new Date(run.createdAt).toLocaleString()}</dd>
            {run.runnerStartedAt && <><dt>Started</dt><dd>{new Date(run.runnerStartedAt).toLocaleString()}</dd></>}
            {run.finishedAt && <><dt>Finished</dt><dd>{new Date(run.finishedAt).toLocaleString()}</dd></>}
            <dt>Results</dt><dd>{run.results.outputPath
              ? <code data-testid="results-path">{run.results.outputPath}</code> : <span className="muted">—</span>}</dd>
          </dl>
          <div className="actions">
            {run.status === "pending" &&
              <button type="button" onClick={() => void act("release")} disabled={busy}>Release run</button>}
            {!final && <button type="button" className="danger" onClick={() => void act("cancel")} disabled={busy}>Cancel run</button>}
            {RETRYABLE_RUN_STATES.has(run.status) &&
              <button type="button" onClick={() => void act("retry")} disabled={busy}>Retry</button>}
          </div>
        </>
      )}
      <h2>Output</h2>
      <pre className="logs" ref={logBox} data-testid="run-logs" aria-live="polite" tabIndex={0}>
        {logs || <span className="muted">{final ? "No output." : "Waiting for output…"}</span>}
      </pre>
    </section>
  );
}
