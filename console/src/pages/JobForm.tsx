/** Create or edit a job: the common fields as a form (name, team, SQL or Python source, cron with a preview in
 * plain words and its time zone), everything else in a JSON editor. The API validates; its field errors
 * (`details.fieldErrors`) are shown beside the fields they are about, the rest beside the JSON editor.
 * Editing publishes a new version (createJobVersion), then renames or re-describes the job (updateJob); or saves
 * the changes as the job's draft (createJobDraft, or updateJobDraft when there is one, which the form then shows),
 * leaving the live version as it is until the draft is published from the versions page. */
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, ApiFailure, call } from "../api/client";
import type { components } from "../api/schema";
import { describeCron } from "../cron";

type Job = components["schemas"]["JobView"];
type Version = components["schemas"]["JobVersionView"];
type TeamItem = components["schemas"]["TeamItem"];
type Kind = "sql" | "python";
type Fields = Record<string, string>;

/** The form's own fields, by the API's field path; any other path is about the JSON editor. */
const FORM_FIELDS: Record<string, string> = {
  jobKey: "jobKey", description: "description", teamIds: "teamIds", cronExpression: "cronExpression",
  cronTimezone: "cronTimezone", "config.sql.source": "source", "config.python.source": "source",
};

const DEFAULT_EXTRA = { clusterId: "LOCAL", timeoutSeconds: null, concurrencyPolicy: "skip", maxConcurrentRuns: 1,
  missedSchedulePolicy: "latest", config: {} };

function extraOf(job: Job | Version): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(job.config)) {
    if (value === null || value === undefined) continue;
    if (key === "sql" || key === "python") {
      const { source: _source, ...rest } = value as Record<string, unknown>;
      const kept = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null));
      if (Object.keys(kept).length) config[key] = kept;
    } else config[key] = value;
  }
  return {
    clusterId: job.clusterId, timeoutSeconds: job.timeoutSeconds, concurrencyPolicy: job.concurrencyPolicy,
    maxConcurrentRuns: job.maxConcurrentRuns, missedSchedulePolicy: job.missedSchedulePolicy,
    dependsOn: job.dependsOn.map((d) => ({ jobKey: d.jobKey })),
    ...(job.sourceConfig ? { sourceConfig: { url: job.sourceConfig.url, reference: job.sourceConfig.reference } } : {}),
    config,
  };
}

export default function JobForm() {
  const { jobId } = useParams();
  const editing = Boolean(jobId);
  const navigate = useNavigate();
  const [job, setJob] = useState<Job | null>(null);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [jobKey, setJobKey] = useState("");
  const [description, setDescription] = useState("");
  const [team, setTeam] = useState("");
  const [kind, setKind] = useState<Kind>("sql");
  const [source, setSource] = useState("");
  const [cron, setCron] = useState("");
  const [timezone, setTimezone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [extra, setExtra] = useState(JSON.stringify(DEFAULT_EXTRA, null, 2));
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [draft, setDraft] = useState<Version | null>(null);
  const zones = useMemo(() => (typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : []), []);

  useEffect(() => {
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => {
        setTeams(list.items);
        setTeam((t) => t || list.items[0]?.team.id || "");
      }, (e: Error) => setError(e.message));
  }, []);

  useEffect(() => {
    if (!jobId) return;
    call(api.GET("/api/v1/workloads/jobs/{job}", { params: { path: { job: jobId } } })).then(async (d) => {
      const j = d.included.jobs.find((x) => x.id === jobId);
      if (!j) return;
      // With a draft, the form shows the draft: saving it again changes the draft, not the live version.
      const pending = j.draftVersion
        ? await call(api.GET("/api/v1/workloads/jobs/{job}/draft", { params: { path: { job: jobId } } })) : null;
      const shown: Job | Version = pending ?? j;
      setDraft(pending);
      setJob(j);
      setJobKey(j.jobKey);
      setDescription(shown.description ?? "");
      setTeam(d.item.teamIds[0] ?? "");
      const python = shown.config.python?.source;
      setKind(python ? "python" : "sql");
      setSource(python ?? shown.config.sql?.source ?? "");
      setCron(shown.cronExpression ?? "");
      setTimezone(shown.cronTimezone ?? "UTC");
      setExtra(JSON.stringify(extraOf(shown), null, 2));
    }).catch((e: Error) => setError(e.message));
  }, [jobId]);

  const preview = cron.trim() ? describeCron(cron) : null;

  async function submit(e: FormEvent) {
    e.preventDefault();
    const asDraft = ((e.nativeEvent as SubmitEvent).submitter as HTMLButtonElement | null)?.name === "saveDraft";
    setErrors({});
    setError(null);
    let rest: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(extra || "{}");
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
      rest = parsed as Record<string, unknown>;
    } catch (err) {
      setErrors({ extra: `Not a JSON object: ${(err as Error).message}` });
      return;
    }
    const config = { ...((rest.config as Record<string, unknown> | undefined) ?? {}) };
    const own = (config[kind] as Record<string, unknown> | undefined) ?? {};
    config[kind] = { ...own, source };
    delete config[kind === "sql" ? "python" : "sql"];
    const schedule = { cronExpression: cron.trim() || null, cronTimezone: cron.trim() ? timezone || null : null };
    setBusy(true);
    try {
      if (!editing) {
        const body = { ...rest, jobKey, description: description || null, teamIds: team ? [team] : [], config,
          ...schedule };
        const created = await call(api.POST("/api/v1/workloads/jobs", {
          body: body as components["schemas"]["CreateJobRequest"],
        }));
        navigate(`/jobs/${created.id}`);
      } else if (job && asDraft) {
        const body = { ...rest, description: description || null, config, ...schedule } as
          components["schemas"]["VersionFields"];
        const path = { params: { path: { job: job.id } }, body };
        if (draft) await call(api.PATCH("/api/v1/workloads/jobs/{job}/draft", path));
        else await call(api.POST("/api/v1/workloads/jobs/{job}/draft", path));
        navigate(`/jobs/${job.id}/versions?from=${job.currentVersion}&to=draft`);
      } else if (job) {
        const body = { ...rest, description: description || null, config, ...schedule };
        const published = await call(api.POST("/api/v1/workloads/jobs/{job}/versions", {
          params: { path: { job: job.id } }, body: body as components["schemas"]["VersionFields"],
        }));
        if (jobKey !== job.jobKey) {
          await call(api.PATCH("/api/v1/workloads/jobs/{job}", {
            params: { path: { job: job.id } }, body: { jobKey, version: published.version },
          }));
        }
        navigate(`/jobs/${job.id}`);
      }
    } catch (err) {
      const fields = err instanceof ApiFailure ? err.fields : {};
      const mapped: Fields = {};
      for (const [path, message] of Object.entries(fields)) {
        const at = FORM_FIELDS[path] ?? "extra";
        mapped[at] = mapped[at] ? `${mapped[at]}; ${at === "extra" ? `${path}: ` : ""}${message}`
          : `${at === "extra" ? `${path}: ` : ""}${message}`;
      }
      setErrors(mapped);
      setError((err as Error).message);
      setBusy(false);
    }
  }

  const fieldError = (name: string) => errors[name]
    ? <span className="field-error" id={`${name}-error`} role="alert">{errors[name]}</span> : null;
  const described = (name: string) => (errors[name] ? { "aria-invalid": true, "aria-describedby": `${name}-error` } : {});

  if (editing && !job && !error) return <p className="muted" role="status">Loading job…</p>;
  if (!editing && teams.length === 0 && !error) {
    return <section><h1>New job</h1><p className="empty">Jobs belong to a team: <Link to="/teams">create a team</Link> first.</p></section>;
  }
  return (
    <section>
      <p><Link to={job ? `/jobs/${job.id}` : "/jobs"}>← {job ? job.jobKey : "Jobs"}</Link></p>
      <h1>{editing ? `Edit ${job?.jobKey ?? "job"}` : "New job"}</h1>
      {draft && <p className="muted" role="note">Showing the draft (version {draft.version}, based on
        version {draft.basedOnVersion ?? job?.currentVersion}): “Save as draft” changes it; the live version stays as it
        is until the draft is <Link to={`/jobs/${draft.jobId}/versions`}>published</Link>.</p>}
      <form className="stack" onSubmit={submit} aria-label={editing ? "Edit job" : "Create job"} noValidate>
        <label>Name
          <input name="jobKey" required maxLength={128} value={jobKey} onChange={(e) => setJobKey(e.target.value)}
            {...described("jobKey")} />
          <span className="hint">Unique in the organization: letters, digits, “.”, “_” and “-”.</span>
          {fieldError("jobKey")}
        </label>
        <label>Description
          <input name="description" maxLength={2000} value={description}
            onChange={(e) => setDescription(e.target.value)} {...described("description")} />
          {fieldError("description")}
        </label>
        <label>Team
          <select name="team" value={team} onChange={(e) => setTeam(e.target.value)} disabled={editing}
            {...described("teamIds")}>
            {teams.map(({ team: t }) => <option key={t.id} value={t.id}>{t.name}</option>)}
          </select>
          {fieldError("teamIds")}
        </label>
        <fieldset>
          <legend>Kind</legend>
          <label><input type="radio" name="kind" value="sql" checked={kind === "sql"}
            onChange={() => setKind("sql")} /> SQL</label>
          <label><input type="radio" name="kind" value="python" checked={kind === "python"}
            onChange={() => setKind("python")} /> Python</label>
        </fieldset>
        <label>{kind === "sql" ? "SQL" : "Python source"}
          <textarea name="source" rows={8} value={source} spellCheck={false}
            onChange={(e) => setSource(e.target.value)} {...described("source")} />
          {fieldError("source")}
        </label>
        <label>Schedule (cron)
          <input name="cronExpression" placeholder="e.g. 0 2 * * * (empty: run by hand only)" value={cron}
            onChange={(e) => setCron(e.target.value)} {...described("cronExpression")} />
          <span className="hint" data-testid="cron-preview" aria-live="polite">
            {!cron.trim() ? "No schedule: runs only when triggered."
              : preview ?? "Five fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @weekly…"}
          </span>
          {fieldError("cronExpression")}
        </label>
        <label>Time zone
          <input name="cronTimezone" list="time-zones" value={timezone} onChange={(e) => setTimezone(e.target.value)}
            {...described("cronTimezone")} />
          {fieldError("cronTimezone")}
        </label>
        <datalist id="time-zones">{zones.map((z) => <option key={z} value={z} />)}</datalist>
        <label>Other settings (JSON)
          <textarea name="extra" rows={10} value={extra} spellCheck={false}
            onChange={(e) => setExtra(e.target.value)} {...described("extra")} />
          <span className="hint">Cluster, timeout, concurrency, dependencies, git source, compute and parameters, as in
            the API's createJob body.</span>
          {fieldError("extra")}
        </label>
        {error && Object.keys(errors).length === 0 && <p className="error" role="alert">{error}</p>}
        <div className="actions">
          {/* With a draft, the API takes no new version (409) until it is published or discarded: only the draft. */}
          {!draft && <button type="submit" disabled={busy}>{busy ? "Saving…" : editing ? "Save new version" : "Create job"}</button>}
          {editing && <button type="submit" name="saveDraft" className="secondary" disabled={busy}>Save as draft</button>}
        </div>
      </form>
    </section>
  );
}
