/** Team sharing of a catalog or a saved query, shared by their pages: the organization's teams to pick from when
 * creating one (`useTeamChoice`, the first team preselected), and on an existing one's page the teams it is
 * shared with, one more shared and one removed (`TeamSharing`: list/add/remove CatalogTeams or QueryTeams). The API
 * refuses to remove the last team (409): said in its words, like any other refusal. */
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call } from "./api/client";
import type { components } from "./api/schema";

type TeamItem = components["schemas"]["TeamItem"];

/** The organization's teams the caller may see (the first 100, by name). */
export const listTeams = () =>
  call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } })).then((l) => l.items);

/** A new resource's teams: the choices, and the ones picked (the first team until the person picks). */
export function useTeamChoice(creating: boolean, onError: (message: string) => void) {
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [teamIds, setTeamIds] = useState<string[]>([]);
  useEffect(() => {
    if (!creating) return;
    listTeams().then((items) => {
      setTeams(items);
      setTeamIds((t) => (t.length || !items[0] ? t : [items[0].team.id]));
    }, (e: Error) => onError(e.message));
  }, [creating]); // onError: a state setter
  return { teams, teamIds, setTeamIds };
}

/** The three sharing operations of one kind of resource. */
export interface Sharing {
  list(id: string): Promise<TeamItem[]>;
  add(id: string, teamIds: string[]): Promise<unknown>;
  remove(id: string, teamId: string): Promise<unknown>;
}

export const CATALOG_SHARING: Sharing = {
  list: (catalog) => call(api.GET("/api/v1/data/catalogs/{catalog}/teams", {
    params: { path: { catalog }, query: { limit: 100 } } })).then((l) => l.items),
  add: (catalog, teamIds) => call(api.POST("/api/v1/data/catalogs/{catalog}/teams", {
    params: { path: { catalog } }, body: { teamIds } })),
  remove: (catalog, team) => call(api.DELETE("/api/v1/data/catalogs/{catalog}/teams/{team}", {
    params: { path: { catalog, team } } })),
};

export const QUERY_SHARING: Sharing = {
  list: (query) => call(api.GET("/api/v1/workloads/queries/{query}/teams", {
    params: { path: { query }, query: { limit: 100 } } })).then((l) => l.items),
  add: (query, teamIds) => call(api.POST("/api/v1/workloads/queries/{query}/teams", {
    params: { path: { query } }, body: { teamIds } })),
  remove: (query, team) => call(api.DELETE("/api/v1/workloads/queries/{query}/teams/{team}", {
    params: { path: { query, team } } })),
};

const members = (n: number) => `${n} member${n === 1 ? "" : "s"}`;

/** The teams an existing resource is shared with: each removable, and a team to add picked from the others. */
export function TeamSharing({ sharing, id, what }: { sharing: Sharing; id: string; what: string }) {
  const headingId = useId();
  const select = useRef<HTMLSelectElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const [shared, setShared] = useState<TeamItem[] | null>(null);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [choice, setChoice] = useState("");
  const [busy, setBusy] = useState<string | null>(null); // "add", or the ID of the team being removed
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [changes, setChanges] = useState(0);

  useEffect(() => {
    sharing.list(id).then(setShared, (e: Error) => { setShared([]); setError(e.message); });
    listTeams().then(setTeams, (e: Error) => setError(e.message));
  }, [sharing, id]);

  // After a change, once rendered: the button pressed may be gone, so the keyboard goes on from the team field
  // (or the heading when every team has it and the field is disabled).
  useEffect(() => {
    if (!changes) return;
    if (select.current && !select.current.disabled) select.current.focus();
    else heading.current?.focus();
  }, [changes]);

  const sharedIds = new Set((shared ?? []).map((t) => t.team.id));
  const others = teams.filter((t) => !sharedIds.has(t.team.id));
  const picked = others.some((t) => t.team.id === choice) ? choice : others[0]?.team.id ?? "";

  async function change(key: string, action: () => Promise<unknown>, message: string) {
    setBusy(key);
    setError(null);
    setDone(null);
    try {
      await action();
      setShared(await sharing.list(id));
      setDone(message);
      setChanges((n) => n + 1);
    } catch (err) {
      setError((err as Error).message); // the button pressed is still there, and keeps the focus
    } finally {
      setBusy(null);
    }
  }

  function add(e: FormEvent) {
    e.preventDefault();
    const team = others.find((t) => t.team.id === picked);
    if (!team) return;
    void change("add", () => sharing.add(id, [team.team.id]), `Shared with ${team.team.name}.`);
  }

  const remove = (team: TeamItem) =>
    void change(team.team.id, () => sharing.remove(id, team.team.id), `No longer shared with ${team.team.name}.`);

  return (
    <section aria-labelledby={headingId} aria-busy={busy !== null}>
      <h2 id={headingId} ref={heading} tabIndex={-1}>Shared with teams</h2>
      <p className="hint">Members of these teams can see and use this {what}.</p>
      {shared === null ? <p className="muted" role="status">Loading teams…</p> : (
        <ul className="shared-teams" aria-label={`Teams the ${what} is shared with`}>
          {shared.length === 0 && <li className="muted">No team.</li>}
          {shared.map((t) => (
            <li key={t.team.id}>
              <Link to={`/teams/${t.team.id}`}>{t.team.name}</Link> <span className="muted">{members(t.memberCount)}</span>
              <button type="button" className="secondary" disabled={busy !== null} onClick={() => remove(t)}
                aria-label={`Stop sharing with ${t.team.name}`}>
                {busy === t.team.id ? "Removing…" : "Remove"}
              </button>
            </li>
          ))}
        </ul>
      )}
      <form className="inline" onSubmit={add} aria-label={`Share the ${what} with a team`}>
        <label>Team
          <select name="shareTeam" aria-label="Team to share with" ref={select} value={picked}
            onChange={(e) => setChoice(e.target.value)} disabled={others.length === 0}>
            {others.length === 0 && <option value="">(shared with every team you can see)</option>}
            {others.map((t) => <option key={t.team.id} value={t.team.id}>{t.team.name}</option>)}
          </select>
        </label>
        <button type="submit" disabled={busy !== null || !picked}>{busy === "add" ? "Sharing…" : "Share"}</button>
        {error && <p className="error" role="alert">{error}</p>}
        {done && <p className="ok" role="status">{done}</p>}
      </form>
    </section>
  );
}
