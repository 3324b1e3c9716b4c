/** Jobs the caller may view, a page at a time and sorted like the API (listJobs: page, limit, sortBy, sortDirection;
 * all in the URL, so a page is a link and Back returns to it), with each job's schedule, next run and the status of
 * its latest run. */
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { Pager } from "../admin/ui";
import { describeCron } from "../cron";

type Job = components["schemas"]["JobView"];
type Run = components["schemas"]["JobRunView"];
type SortBy = "jobKey" | "createdAt";
interface Row { job: Job; lastRun: Run | null }
const JOBS_PAGE_SIZE = 25;
const COLUMN: Record<SortBy, string> = { jobKey: "name", createdAt: "created" };

export default function Jobs() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const sortBy: SortBy = params.get("sortBy") === "createdAt" ? "createdAt" : "jobKey";
  const sortDirection = params.get("sortDirection") === "desc" ? "desc" : "asc";
  const [rows, setRows] = useState<Row[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    setError(null);
    call(api.GET("/api/v1/workloads/jobs", {
      params: { query: { page, limit: JOBS_PAGE_SIZE, sortBy, sortDirection } },
    })).then((list) => {
      if (!current) return;
      // The list answers references; jobs and their latest runs are in `included` (the API's envelope).
      const jobs = new Map(list.included.jobs.map((j) => [j.id, j]));
      const runs = new Map(list.included.jobRuns.map((r) => [r.id, r]));
      setRows(list.items.flatMap((ref) => {
        const job = jobs.get(ref.jobId);
        return job ? [{ job, lastRun: ref.latestJobRunId ? runs.get(ref.latestJobRunId) ?? null : null }] : [];
      }));
      setTotal(list.total);
    }, (e: Error) => { if (current) setError(e.message); });
    return () => { current = false; };
  }, [page, sortBy, sortDirection]);

  const go = (next: { page?: number; sortBy?: SortBy; sortDirection?: string }) => {
    const merged = { page: String(next.page ?? page), sortBy: next.sortBy ?? sortBy,
      sortDirection: next.sortDirection ?? sortDirection };
    setParams(merged);
  };
  /** A column header that sorts: the same column flips the direction, another one starts ascending. */
  const sortHeader = (column: SortBy, label: string) => {
    const active = sortBy === column;
    const nextDirection = active && sortDirection === "asc" ? "desc" : "asc";
    return (
      <th aria-sort={active ? (sortDirection === "asc" ? "ascending" : "descending") : "none"}>
        <button type="button" className="link" onClick={() => go({ page: 1, sortBy: column, sortDirection: nextDirection })}
          aria-label={`Sort by ${COLUMN[column]}, ${nextDirection === "asc" ? "ascending" : "descending"}`}>
          {label}{active ? (sortDirection === "asc" ? " ▲" : " ▼") : ""}
        </button>
      </th>
    );
  };

  return (
    <section>
      <div className="title-row">
        <h1>Jobs</h1>
        <Link className="button" to="/jobs/new">New job</Link>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {rows === null && !error && <p className="muted" role="status">Loading jobs…</p>}
      {rows !== null && total === 0 && (
        <p className="empty">No jobs yet. <Link to="/jobs/new">Create a job</Link>: SQL or Python, run on a schedule
          or by hand.</p>
      )}
      {rows !== null && rows.length === 0 && total > 0 && (
        <p className="empty">No jobs on this page. <button type="button" className="link" onClick={() => go({ page: 1 })}>
          Go to the first page</button>.</p>
      )}
      {rows !== null && rows.length > 0 && (
        <table aria-label="Jobs">
          <thead><tr>{sortHeader("jobKey", "Name")}<th>Schedule</th><th>Next run</th><th>Last run</th>
            {sortHeader("createdAt", "Created")}</tr></thead>
          <tbody>
            {rows.map(({ job, lastRun }) => (
              <tr key={job.id}>
                <td><Link to={`/jobs/${job.id}`}>{job.jobKey}</Link>
                  {job.status === "paused" && <span className="muted"> (paused)</span>}</td>
                <td>{job.cronExpression
                  ? <><code>{job.cronExpression}</code> <span className="muted">{job.cronTimezone ?? "UTC"}</span>
                    <br /><small className="muted">{describeCron(job.cronExpression) ?? ""}</small></>
                  : <span className="muted">By hand</span>}</td>
                <td data-testid="next-run">{job.nextRunAt && job.status !== "paused"
                  ? <time dateTime={job.nextRunAt}>{new Date(job.nextRunAt).toLocaleString()}</time> : "—"}</td>
                <td>{lastRun
                  ? <Link to={`/jobs/${job.id}/runs/${lastRun.id}`}>
                      <span className={`status status-${lastRun.status}`}>{lastRun.status}</span></Link>
                  : <span className="muted">Never run</span>}</td>
                <td>{new Date(job.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {total > 0 && <p className="muted">{total} job{total === 1 ? "" : "s"}.</p>}
      <Pager page={page} total={total} pageSize={JOBS_PAGE_SIZE} onPage={(p) => go({ page: p })} />
    </section>
  );
}
