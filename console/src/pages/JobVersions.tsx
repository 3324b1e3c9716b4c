/** A job's versions and its draft: the published versions (the API's pages), the draft with publish and discard,
 * and a diff between any two of them (or the draft and the live version), chosen in the URL (?from=&to=, so a diff
 * is a link). */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { Pager, when } from "../admin/ui";
import { lineDiff, settingsText, type DiffLine } from "../jobDiff";

type Job = components["schemas"]["JobView"];
type Version = components["schemas"]["JobVersionView"];
const PAGE_SIZE = 20;
const DRAFT = "draft";

/** One side of a diff: a published version (describeJobVersion) or the draft (describeJobDraft). */
async function settingsOf(jobId: string, which: string): Promise<string[]> {
  if (which === DRAFT) {
    return settingsText(await call(api.GET("/api/v1/workloads/jobs/{job}/draft", { params: { path: { job: jobId } } })));
  }
  const d = await call(api.GET("/api/v1/workloads/jobs/{job}/versions/{jobVersionNumber}", {
    params: { path: { job: jobId, jobVersionNumber: Number(which) } },
  }));
  return settingsText(d.included.jobs[0]);
}

const label = (which: string, job: Job | null) => which === DRAFT ? `the draft (version ${job?.draftVersion ?? "?"})`
  : `version ${which}${job && Number(which) === job.currentVersion ? " (live)" : ""}`;

export default function JobVersions() {
  const { jobId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const from = params.get("from");
  const to = params.get("to");
  const [job, setJob] = useState<Job | null>(null);
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [total, setTotal] = useState(0);
  const [diff, setDiff] = useState<DiffLine[] | null>(null);
  const [diffing, setDiffing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [pickFrom, setPickFrom] = useState(from ?? "");
  const [pickTo, setPickTo] = useState(to ?? "");

  const load = useCallback(async () => {
    try {
      const d = await call(api.GET("/api/v1/workloads/jobs/{job}", { params: { path: { job: jobId } } }));
      const j = d.included.jobs.find((x) => x.id === jobId) ?? null;
      setJob(j);
      const list = await call(api.GET("/api/v1/workloads/jobs/{job}/versions", {
        params: { path: { job: jobId }, query: { page, limit: PAGE_SIZE } },
      }));
      setVersions(list.items);
      setTotal(list.total);
      if (j) {
        setPickFrom((f) => f || String(j.currentVersion));
        setPickTo((t) => t || (j.draftVersion ? DRAFT : String(Math.max(1, j.currentVersion - 1))));
      }
    } catch (e) {
      setError((e as Error).message);
    }
  }, [jobId, page]);
  useEffect(() => { void load(); }, [load]);

  useEffect(() => {
    if (!from || !to) { setDiff(null); return; }
    let current = true;
    setDiffing(true);
    Promise.all([settingsOf(jobId, from), settingsOf(jobId, to)]).then(([a, b]) => {
      if (current) setDiff(lineDiff(a, b));
    }, (e: Error) => { if (current) { setDiff(null); setError(e.message); } })
      .finally(() => { if (current) setDiffing(false); });
    return () => { current = false; };
  }, [jobId, from, to, job?.draftVersion]);

  function compare(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setParams({ page: String(page), from: pickFrom, to: pickTo });
  }

  async function draftAction(action: "publish" | "discard") {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      if (action === "publish") {
        const published = await call(api.POST("/api/v1/workloads/jobs/{job}/draft/publish", { params: { path: { job: jobId } } }));
        setNotice(`The draft is live as version ${published.currentVersion}.`);
      } else {
        await call(api.DELETE("/api/v1/workloads/jobs/{job}/draft", { params: { path: { job: jobId } } }));
        setNotice("The draft was discarded; the live version is unchanged.");
      }
      setParams({ page: String(page) });
      setPickFrom("");
      setPickTo("");
      await load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const choices = [...(job?.draftVersion ? [DRAFT] : []), ...(versions ?? []).map((v) => String(v.version))];
  const added = diff?.filter((l) => l.kind === "added").length ?? 0;
  const removed = diff?.filter((l) => l.kind === "removed").length ?? 0;
  return (
    <section>
      <p><Link to={`/jobs/${jobId}`}>← {job?.jobKey ?? "Job"}</Link></p>
      <h1>Versions{job ? ` of ${job.jobKey}` : ""}</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {versions === null && !error && <p className="muted" role="status">Loading versions…</p>}

      {job && (
        <section aria-label="Draft">
          <h2>Draft</h2>
          {job.draftVersion ? (
            <>
              <p>A draft (version {job.draftVersion}) is waiting; the live version {job.currentVersion} keeps running
                until it is published.</p>
              <div className="actions">
                <Link className="button" to={`/jobs/${jobId}/versions?from=${job.currentVersion}&to=${DRAFT}`}
                  onClick={() => { setPickFrom(String(job.currentVersion)); setPickTo(DRAFT); }}>Compare with live</Link>
                <button type="button" disabled={busy} onClick={() => void draftAction("publish")}>Publish draft</button>
                <button type="button" className="danger" disabled={busy} onClick={() => void draftAction("discard")}>
                  Discard draft</button>
              </div>
            </>
          ) : (
            <p className="empty">No draft. <Link to={`/jobs/${jobId}/edit`}>Edit the job</Link> and choose “Save as
              draft” to prepare changes without touching the live version.</p>
          )}
        </section>
      )}

      {versions !== null && versions.length > 0 && (
        <>
          <h2>Published versions</h2>
          <table aria-label="Versions">
            <thead><tr><th>Version</th><th>Schedule</th><th>Created</th><th /></tr></thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.version}>
                  <td><Link to={`/jobs/${jobId}/versions/${v.version}`}>Version {v.version}</Link>
                    {job?.currentVersion === v.version && <strong className="status status-active"> (live)</strong>}</td>
                  <td>{v.cronExpression ? <code>{v.cronExpression}</code> : <span className="muted">By hand</span>}</td>
                  <td>{when(v.createdAt)}</td>
                  <td>{job && job.currentVersion !== v.version
                    && <Link to={`/jobs/${jobId}/versions?from=${v.version}&to=${job.currentVersion}`}
                      onClick={() => { setPickFrom(String(v.version)); setPickTo(String(job.currentVersion)); }}>
                      Compare with live</Link>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager page={page} total={total} pageSize={PAGE_SIZE} onPage={(p) => setParams({ page: String(p) })} />
        </>
      )}

      {choices.length > 1 && <h2>Compare</h2>}
      {choices.length > 1 && (
        <form className="compare-form" onSubmit={compare} aria-label="Compare versions">
          <label>From
            <select name="from" value={pickFrom} onChange={(e) => setPickFrom(e.target.value)}>
              {choices.map((c) => <option key={c} value={c}>{label(c, job)}</option>)}
            </select>
          </label>
          <label>To
            <select name="to" value={pickTo} onChange={(e) => setPickTo(e.target.value)}>
              {choices.map((c) => <option key={c} value={c}>{label(c, job)}</option>)}
            </select>
          </label>
          <button type="submit">Compare</button>
        </form>
      )}
      {diffing && <p className="muted" role="status">Comparing…</p>}
      {diff && from && to && !diffing && (
        <>
          <p data-testid="diff-summary">From {label(from, job)} to {label(to, job)}: {added || removed
            ? `${added} line${added === 1 ? "" : "s"} added, ${removed} removed.` : "no differences."}</p>
          <pre className="diff" aria-label="Diff"><code>{diff.map((l, i) => (
            <span key={i} className={`diff-${l.kind}`}>
              {l.kind === "added" ? "+ " : l.kind === "removed" ? "- " : "  "}{l.text}{"\n"}</span>))}</code></pre>
        </>
      )}
    </section>
  );
}
