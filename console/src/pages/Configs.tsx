/** Workload configs of the caller's teams (all of them for organization admins): the named compute profiles that
 * sessions and notebooks run with. The API keeps them as created (no update): a changed profile is a new config,
 * which the form can start from an existing one. */
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { sailOf } from "../configs";
import "../workloads.css";

type Config = components["schemas"]["WorkloadConfigView"];
type TeamItem = components["schemas"]["TeamItem"];

export default function Configs() {
  const [configs, setConfigs] = useState<Config[] | null>(null);
  const [more, setMore] = useState(false);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => setTeams(list.items), () => {});
    call(api.GET("/api/v1/workloads/compute-configs", { params: { query: { limit: 100 } } })).then((list) => {
      setConfigs(list.items);
      setMore(Boolean(list.marker));
    }, (e: Error) => setError(e.message));
  }, []);

  const teamName = (id: string) => teams.find((t) => t.team.id === id)?.team.name ?? id;
  return (
    <section>
      <div className="title-row">
        <h1>Workload configs</h1>
        <Link className="button" to="/configs/new">New workload config</Link>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {configs === null && !error && <p className="muted" role="status">Loading workload configs…</p>}
      {configs !== null && configs.length === 0 && (
        <p className="empty">No workload configs yet. <Link to="/configs/new">Create one</Link>: a team's compute
          profile (Spark version, execution mode, libraries, environment) for its sessions and notebooks.</p>
      )}
      {configs !== null && configs.length > 0 && (
        <table aria-label="Workload configs">
          <thead><tr><th>Name</th><th>Team</th><th>Cluster</th><th>Mode</th><th>Spark</th><th>Created</th></tr></thead>
          <tbody>
            {configs.map((c) => {
              const sail = sailOf(c);
              return (
                <tr key={c.id}>
                  <td><Link to={`/configs/${c.id}`}>{c.name ?? c.id}</Link></td>
                  <td>{teamName(c.teamId)}</td>
                  <td>{c.clusterId}</td>
                  <td>{String(sail.executionMode ?? "standalone")}</td>
                  <td>{sail.sparkVersion ? String(sail.sparkVersion) : <span className="muted">default</span>}</td>
                  <td>{new Date(c.createdAt).toLocaleString()}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {more && <p className="muted">Showing the first {configs?.length} workload configs.</p>}
    </section>
  );
}
