/** Notebooks the caller owns or that are shared with their teams (the API's listNotebooks, newest first), and a
 * form to create one from a workload config, optionally shared with a team. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { fieldHelpers, mapFieldErrors, type Fields } from "../fields";
import { CHANGING } from "../notebookStates";
import "../workloads.css";

type Notebook = components["schemas"]["NotebookView"];
type Config = components["schemas"]["WorkloadConfigView"];
type TeamItem = components["schemas"]["TeamItem"];
interface Row { notebook: Notebook; teamIds: string[] }
const POLL_MS = 3000;

export default function Notebooks() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [configs, setConfigs] = useState<Config[] | null>(null);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [memberId, setMemberId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/me")).then((me) => setMemberId(me.memberId), () => {});
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => setTeams(list.items), (e: Error) => setError(e.message));
    call(api.GET("/api/v1/workloads/compute-configs", { params: { query: { limit: 100 } } }))
      .then((list) => setConfigs(list.items), (e: Error) => setError(e.message));
  }, []);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/workloads/notebooks", { params: { query: { limit: 100 } } }));
      // The list answers references; the notebooks themselves are in `included` (the API's envelope).
      const byId = new Map(list.included.notebooks.map((n) => [n.id, n]));
      setRows(list.items.flatMap((ref) => {
        const notebook = byId.get(ref.notebookId);
        return notebook ? [{ notebook, teamIds: ref.teamIds }] : [];
      }));
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);
  const changing = rows?.some((r) => CHANGING.has(r.notebook.status)) ?? false;
  useEffect(() => {
    void load();
    if (!changing) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [load, changing]);

  const teamName = (id: string) => teams.find((t) => t.team.id === id)?.team.name ?? id;
  const configName = (id: string) => configs?.find((c) => c.id === id)?.name ?? id;

  return (
    <section>
      <h1>Notebooks</h1>
      {configs !== null && <CreateNotebook configs={configs} teams={teams} teamName={teamName} />}
      {error && <p className="error" role="alert">{error}</p>}
      {rows === null && !error && <p className="muted" role="status">Loading notebooks…</p>}
      {rows !== null && rows.length === 0 && (
        <p className="empty">No notebooks yet. Create one above: a marimo notebook with a Spark session on Sail,
          started when you need it.</p>
      )}
      {rows !== null && rows.length > 0 && (
        <table aria-label="Notebooks">
          <thead><tr><th>Name</th><th>Status</th><th>Owner</th><th>Shared with</th><th>Workload config</th>
            <th>Created</th></tr></thead>
          <tbody>
            {rows.map(({ notebook: n, teamIds }) => (
              <tr key={n.id}>
                <td><Link to={`/notebook/${n.id}`}>{n.name}</Link></td>
                <td><span className={`status nb-status status-${n.status}`}>{n.status}</span></td>
                <td>{n.memberId === memberId ? "You" : <span className="muted">Shared with you</span>}</td>
                <td>{teamIds.length ? teamIds.map(teamName).join(", ") : <span className="muted">Only the owner</span>}</td>
                <td>{configName(n.workloadConfigId)}</td>
                <td>{new Date(n.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const FORM_FIELDS: Record<string, string> = { name: "name", workloadConfigId: "workloadConfigId", teamIds: "teamIds",
  description: "description" };

function CreateNotebook({ configs, teams, teamName }: {
  configs: Config[]; teams: TeamItem[]; teamName: (id: string) => string;
}) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [config, setConfig] = useState(configs[0]?.id ?? "");
  const [share, setShare] = useState("");
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { fieldError, described } = fieldHelpers(errors);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setError(null);
    try {
      const created = await call(api.POST("/api/v1/workloads/notebooks", {
        body: { name, workloadConfigId: config, teamIds: share ? [share] : [] } as
          components["schemas"]["CreateNotebookRequest"],
      }));
      navigate(`/notebook/${created.item.notebookId}`);
    } catch (err) {
      const mapped = mapFieldErrors(err, FORM_FIELDS, "form");
      setErrors(mapped);
      if (!Object.keys(mapped).length || mapped.form) setError((err as Error).message);
      setBusy(false);
    }
  }

  if (!configs.length) {
    return <p className="empty">A notebook runs with a workload config: <Link to="/configs/new">create a workload
      config</Link> first.</p>;
  }
  return (
    <form className="inline" onSubmit={submit} aria-label="Create notebook" noValidate>
      <label>Notebook name
        <input name="name" maxLength={255} value={name} onChange={(e) => setName(e.target.value)}
          {...described("name")} />
        {fieldError("name")}
      </label>
      <label>Workload config
        <select name="workloadConfigId" value={config} onChange={(e) => setConfig(e.target.value)}
          {...described("workloadConfigId")}>
          {configs.map((c) => <option key={c.id} value={c.id}>{c.name ?? c.id} ({teamName(c.teamId)})</option>)}
        </select>
        {fieldError("workloadConfigId")}
      </label>
      <label>Share with
        <select name="teamIds" value={share} onChange={(e) => setShare(e.target.value)} {...described("teamIds")}>
          <option value="">Nobody (only me)</option>
          {teams.map(({ team: t }) => <option key={t.id} value={t.id}>{t.name}</option>)}
        </select>
        {fieldError("teamIds")}
      </label>
      <button type="submit" disabled={busy || !config}>{busy ? "Creating…" : "Create notebook"}</button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
