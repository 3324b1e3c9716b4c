/** Teams of the organization: a page of the list (sorted like the API) and a form to create one. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, ApiFailure, call } from "../api/client";
import type { components } from "../api/schema";

type TeamItem = components["schemas"]["TeamItem"];
const PAGE_SIZE = 25;

export default function Teams() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const sortDirection = params.get("sort") === "desc" ? "desc" : "asc";
  const [items, setItems] = useState<TeamItem[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/org/teams", {
        params: { query: { page, limit: PAGE_SIZE, sortBy: "name", sortDirection } },
      }));
      setItems(list.items);
      setTotal(list.total);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [page, sortDirection]);

  useEffect(() => { void load(); }, [load]);
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const go = (changes: Record<string, string>) => setParams({ ...Object.fromEntries(params), ...changes });

  return (
    <section>
      <h1>Teams</h1>
      <CreateTeam onCreated={() => void load()} />
      {error && <p className="error" role="alert">{error}</p>}
      {items === null && !error && <p className="muted" role="status">Loading teams…</p>}
      {items !== null && items.length === 0 && page === 1 && (
        <p className="empty">No teams yet. Create the first one above, then start a session for it.</p>
      )}
      {items !== null && items.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>
                <button type="button" className="link" onClick={() => go({ sort: sortDirection === "asc" ? "desc" : "asc", page: "1" })}
                  aria-label={`Sort by name, ${sortDirection === "asc" ? "descending" : "ascending"}`}>
                  Name {sortDirection === "asc" ? "▲" : "▼"}
                </button>
              </th>
              <th>Description</th><th>Members</th><th></th>
            </tr>
          </thead>
          <tbody>
            {items.map(({ team, memberCount }) => (
              <tr key={team.id} data-team-id={team.id}>
                <td><Link to={`/teams/${team.id}`}>{team.name}</Link></td>
                <td>{team.description ?? ""}</td>
                <td>{memberCount}</td>
                <td><Link to={`/sessions?team=${encodeURIComponent(team.id)}`}>Sessions</Link></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages > 1 && (
        <nav className="pager" aria-label="Pages">
          <button type="button" disabled={page <= 1} onClick={() => go({ page: String(page - 1) })}>Previous</button>
          <span>Page {page} of {pages}</span>
          <button type="button" disabled={page >= pages} onClick={() => go({ page: String(page + 1) })}>Next</button>
        </nav>
      )}
    </section>
  );
}

function CreateTeam({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await call(api.POST("/api/v1/org/teams", { body: { name, description: description || null } }));
      setName("");
      setDescription("");
      onCreated();
    } catch (err) {
      setError(err instanceof ApiFailure ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="inline" onSubmit={submit} aria-label="Create team">
      <label>Team name<input name="name" required maxLength={255} value={name}
        onChange={(e) => setName(e.target.value)} /></label>
      <label>Description<input name="description" maxLength={2000} value={description}
        onChange={(e) => setDescription(e.target.value)} /></label>
      <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create team"}</button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
