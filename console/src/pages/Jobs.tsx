/** Jobs the caller may view, by key like the API (listJobs answers up to 100), a page at a time, with each job's
 * schedule, next run and the status of its latest run. */
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { describeCron } from "../cron";

type Job = components["schemas"]["JobView"];
type Run = components["schemas"]["JobRunView"];
interface Row { job: Job; lastRun: Run | null }
const API_LIMIT = 100;
const PAGE_SIZE = 25;

export default function Jobs() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [rows, setRows] = useState<Row[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/workloads/jobs", { params: { query: { limit: API_LIMIT } } })).then((list) => {
      // The list answers references; jobs and their latest runs are in `included` (the API's envelope).
      const jobs = new Map(list.included.jobs.map((j) => [j.id, j]));
      const runs = new Map(list.included.jobRuns.map((r) => [r.id, r]));
      setRows(list.items.flatMap((ref) => {
        const job = jobs.get(ref.jobId);
        return job ? [{ job, lastRun: ref.latestJobRunId ? runs.get(ref.latestJobRunId) ?? null : null }] : [];
      }));
      setTotal(list.total);
    }, (e: Error) => setError(e.message));
  }, []);

  const shown = rows ?? [];
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const slice = shown.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);

  return (
    <section>
      <div className="title-row">
        <h1>Jobs</h1>
        <Link className="button" to="/jobs/new">New job</Link>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {rows === null && !error && <p className="muted" role="status">Loading jobs…</p>}
      {rows !== null && rows.length === 0 && (
        <p className="empty">No jobs yet. <Link to="/jobs/new">Create a job</Link>: SQL or Python, run on a schedule
          or by hand.</p>
      )}
      {slice.length > 0 && (
        <table>
          <thead><tr><th>Name ▲</th><th>Schedule</th><th>Next run</th><th>Last run</th></tr></thead>
          <tbody>
            {slice.map(({ job, lastRun }) => (
              <tr key={job.id}>
                <td><Link to={`/jobs/${job.id}`}>{job.jobKey}</Link>
                  {job.status === "paused" && <span className="muted"> (paused)</span>}</td>
                <td>{job.cronExpression
                  ? <><code>{job.cronExpression}</code> <span className="muted">{job.cronTimezone ?? "UTC"}</span>
                    <br /><small className="muted">{describeCron(job.cronExpression) ?? ""}</small></>
                  : <span className="muted">By hand</span>}</td>
                <td>{job.nextRunAt ? new Date(job.nextRunAt).toLocaleString() : "—"}</td>
                <td>{lastRun
                  ? <Link to={`/jobs/${job.id}/runs/${lastRun.id}`}>
                      <span className={`status status-${lastRun.status}`}>{lastRun.status}</span></Link>
                  : <span className="muted">Never run</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {total > shown.length && (
        <p className="muted">Showing the first {shown.length} of {total} jobs by name.</p>
      )}
      {pages > 1 && (
        <nav className="pager" aria-label="Pages">
          <button type="button" disabled={page <= 1} onClick={() => setParams({ page: String(page - 1) })}>Previous</button>
          <span>Page {page} of {pages}</span>
          <button type="button" disabled={page >= pages} onClick={() => setParams({ page: String(page + 1) })}>Next</button>
        </nav>
      )}
    </section>
  );
}
