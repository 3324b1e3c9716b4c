/** Sessions the caller can see (optionally of one team), and a form to start one for a team. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { FINAL_STATES } from "../snippet";

type Session = components["schemas"]["SessionView"];
type TeamItem = components["schemas"]["TeamItem"];
const POLL_MS = 5000;

export default function Sessions() {
  const [params, setParams] = useSearchParams();
  const teamId = params.get("team") ?? "";
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => setTeams(list.items), (e: Error) => setError(e.message));
  }, []);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/workloads/sessions", {
        params: { query: { limit: 50, ...(teamId ? { teamId } : {}) } },
      }));
      // The list answers references; the sessions themselves are in `included` (the API's envelope).
      const byId = new Map(list.included.sessions.map((s) => [s.id, s]));
      setSessions(list.items.map((ref) => byId.get(ref.id)).filter((s): s is Session => s !== undefined));
    } catch (e) {
      setError((e as Error).message);
    }
  }, [teamId]);
  // The list follows its sessions' status while any of them can still change.
  const changing = sessions?.some((s) => !FINAL_STATES.has(s.status)) ?? false;
  useEffect(() => {
    void load();
    if (!changing) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [load, changing]);

  const teamName = (id: string) => teams.find((t) => t.team.id === id)?.team.name ?? id;

  return (
    <section>
      <h1>Sessions</h1>
      <CreateSession teams={teams} teamId={teamId} />
      <label className="filter">Show team
        <select value={teamId} onChange={(e) => setParams(e.target.value ? { team: e.target.value } : {})}>
          <option value="">All teams</option>
          {teams.map(({ team }) => <option key={team.id} value={team.id}>{team.name}</option>)}
        </select>
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      {sessions === null && !error && <p className="muted" role="status">Loading sessions…</p>}
      {sessions !== null && sessions.length === 0 && (
        <p className="empty">No sessions yet. Start one above, then connect to it with PySpark.</p>
      )}
      {sessions !== null && sessions.length > 0 && (
        <table>
          <thead><tr><th>Name</th><th>Team</th><th>Status</th><th>Created</th></tr></thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.id}>
                <td><Link to={`/sessions/${s.id}`}>{s.name}</Link></td>
                <td>{teamName(s.teamId)}</td>
                <td><span className={`status status-${s.status}`}>{s.status}</span></td>
                <td>{new Date(s.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CreateSession({ teams, teamId }: { teams: TeamItem[]; teamId: string }) {
  const navigate = useNavigate();
  const [team, setTeam] = useState(teamId);
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => { if (!team && teams.length) setTeam(teamId || teams[0].team.id); }, [teams, teamId, team]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await call(api.POST("/api/v1/workloads/sessions", {
        body: { teamId: team, name: name || null, endpointType: "spark_connect", allowShared: false },
      }));
      navigate(`/sessions/${created.id}`);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  if (!teams.length) return <p className="empty">Sessions belong to a team: <Link to="/teams">create a team</Link> first.</p>;
  return (
    <form className="inline" onSubmit={submit} aria-label="Create session">
      <label>Team
        <select name="team" value={team} onChange={(e) => setTeam(e.target.value)} required>
          {teams.map(({ team: t }) => <option key={t.id} value={t.id}>{t.name}</option>)}
        </select>
      </label>
      <label>Session name (optional)<input name="name" maxLength={255} value={name}
        onChange={(e) => setName(e.target.value)} /></label>
      <button type="submit" disabled={busy || !team}>{busy ? "Starting…" : "Start session"}</button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
