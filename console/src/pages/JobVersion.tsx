/** One published version of a job, as the API describes it (describeJobVersion): its schedule, source and the rest
 * of its settings, with links to compare it with the live version and to make it live again (activateJobVersion). */
import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { describeCron } from "../cron";
import { settingsText } from "../jobDiff";

type Job = components["schemas"]["JobView"];

export default function JobVersion() {
  const { jobId = "", version = "" } = useParams();
  const navigate = useNavigate();
  const [shown, setShown] = useState<Job | null>(null);
  const [live, setLive] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const number = Number(version);
    if (!Number.isInteger(number) || number < 1) { setError(`“${version}” is not a version number.`); return; }
    Promise.all([
      call(api.GET("/api/v1/workloads/jobs/{job}/versions/{jobVersionNumber}", {
        params: { path: { job: jobId, jobVersionNumber: number } },
      })),
      call(api.GET("/api/v1/workloads/jobs/{job}", { params: { path: { job: jobId } } })),
    ]).then(([v, j]) => { setShown(v.included.jobs[0] ?? null); setLive(j.included.jobs[0] ?? null); },
      (e: Error) => setError(e.message));
  }, [jobId, version]);

  async function makeLive() {
    setBusy(true);
    setError(null);
    try {
      await call(api.POST("/api/v1/workloads/jobs/{job}/activate-version", {
        params: { path: { job: jobId } }, body: { version: Number(version) },
      }));
      navigate(`/jobs/${jobId}`);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  }

  const source = shown?.config.python?.source ?? shown?.config.sql?.source ?? null;
  const isLive = live !== null && live.currentVersion === Number(version);
  return (
    <section>
      <p><Link to={`/jobs/${jobId}/versions`}>← Versions</Link></p>
      {error && <p className="error" role="alert">{error}</p>}
      {!shown && !error && <p className="muted" role="status">Loading version…</p>}
      {shown && (
        <>
          <div className="title-row">
            <h1>{shown.jobKey}: version {version}{isLive ? " (live)" : ""}</h1>
            {live && !isLive && (
              <div className="actions">
                <Link className="button" to={`/jobs/${jobId}/versions?from=${version}&to=${live.currentVersion}`}>
                  Compare with live</Link>
                <button type="button" disabled={busy} onClick={() => void makeLive()}>Make this version live</button>
              </div>
            )}
          </div>
          <dl className="facts">
            <dt>Kind</dt><dd>{shown.config.python ? "Python" : "SQL"}</dd>
            <dt>Schedule</dt><dd>{shown.cronExpression
              ? <><code>{shown.cronExpression}</code> ({shown.cronTimezone ?? "UTC"}): {describeCron(shown.cronExpression) ?? ""}</>
              : "By hand only"}</dd>
            {shown.description && <><dt>Description</dt><dd>{shown.description}</dd></>}
          </dl>
          {source !== null && <><h2>Source</h2><pre className="logs" aria-label="Source"><code>{source}</code></pre></>}
          <h2>Settings</h2>
          <pre className="logs" aria-label="Settings"><code>{settingsText(shown).join("\n")}</code></pre>
        </>
      )}
    </section>
  );
}
