/** Save a query, or change one: name, description, SQL, an optional catalog (none detaches it) and schema, and
 * (when created) the teams it is shared with. The API's field errors are shown beside the fields. Deleting is
 * refused (409, said in the API's words) while an active job uses the query. `?catalog=ID` preselects a catalog. */
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { fieldHelpers, mapFieldErrors, type Fields } from "../fields";
import { TeamPicker } from "../teamPicker";
import "../workloads.css";

type Query = components["schemas"]["QueryView"];
type Catalog = components["schemas"]["CatalogView"];
type TeamItem = components["schemas"]["TeamItem"];
const FORM_FIELDS: Record<string, string> = { name: "name", description: "description", sql: "sql",
  catalogId: "catalogId", schema: "schema", teamIds: "teamIds" };

export default function QueryForm() {
  const { queryId } = useParams();
  const [params] = useSearchParams();
  const editing = Boolean(queryId);
  const navigate = useNavigate();
  const [query, setQuery] = useState<Query | null>(null);
  const [teamNames, setTeamNames] = useState<string[]>([]);
  const [catalogs, setCatalogs] = useState<Catalog[]>([]);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [sql, setSql] = useState("");
  const [catalogId, setCatalogId] = useState(params.get("catalog") ?? "");
  const [schema, setSchema] = useState("");
  const [teamIds, setTeamIds] = useState<string[]>([]);
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const { fieldError, described } = fieldHelpers(errors);

  useEffect(() => {
    call(api.GET("/api/v1/data/catalogs", { params: { query: { limit: 100 } } }))
      .then((list) => setCatalogs(list.included.catalogs), () => {});
    if (editing) return;
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } })).then((list) => {
      setTeams(list.items);
      setTeamIds((t) => (t.length || !list.items[0] ? t : [list.items[0].team.id]));
    }, (e: Error) => setError(e.message));
  }, [editing]);

  useEffect(() => {
    if (!queryId) return;
    call(api.GET("/api/v1/workloads/queries/{query}", { params: { path: { query: queryId } } })).then((d) => {
      const q = d.included.queries.find((x) => x.id === queryId);
      if (!q) return;
      setQuery(q);
      setName(q.name);
      setDescription(q.description ?? "");
      setSql(q.sql);
      setCatalogId(q.catalogId ?? "");
      setSchema(q.schema ?? "");
      const names = new Map(d.included.teams.map((t) => [t.id, t.name]));
      setTeamNames(d.item.teamIds.map((id) => names.get(id) ?? id));
    }, (e: Error) => setError(e.message));
  }, [queryId]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setError(null);
    setSaved(false);
    setBusy(true);
    const fields = { name, description: description || null, sql, catalogId: catalogId || null, schema: schema || null };
    try {
      if (!queryId) {
        const created = await call(api.POST("/api/v1/workloads/queries", { body: { ...fields, teamIds } }));
        navigate(`/queries/${created.id}`);
        return;
      }
      setQuery(await call(api.PATCH("/api/v1/workloads/queries/{query}", {
        params: { path: { query: queryId } }, body: fields,
      })));
      setSaved(true);
    } catch (err) {
      setErrors(mapFieldErrors(err, FORM_FIELDS, "form"));
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!queryId || !window.confirm(`Delete the saved query ${query?.name ?? ""}?`)) return;
    setBusy(true);
    setError(null);
    try {
      await call(api.DELETE("/api/v1/workloads/queries/{query}", { params: { path: { query: queryId } } }));
      navigate("/queries");
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  if (editing && !query && !error) return <p className="muted" role="status">Loading query…</p>;
  const shownError = error && (Object.keys(errors).length === 0 || errors.form);
  return (
    <section>
      <p><Link to="/queries">← Saved queries</Link></p>
      <h1>{editing ? query?.name ?? "Query" : "New query"}</h1>
      <form className="stack" onSubmit={submit} aria-label={editing ? "Edit query" : "Create query"} noValidate>
        <label>Name
          <input name="name" maxLength={255} value={name} onChange={(e) => setName(e.target.value)} {...described("name")} />
          {fieldError("name")}
        </label>
        <label>Description
          <input name="description" maxLength={2000} value={description} onChange={(e) => setDescription(e.target.value)}
            {...described("description")} />
          {fieldError("description")}
        </label>
        <label>SQL
          <textarea name="sql" rows={8} value={sql} spellCheck={false} onChange={(e) => setSql(e.target.value)}
            {...described("sql")} />
          {fieldError("sql")}
        </label>
        <label>Catalog
          <select name="catalogId" value={catalogId} onChange={(e) => setCatalogId(e.target.value)} {...described("catalogId")}>
            <option value="">None</option>
            {catalogs.map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
          </select>
          {fieldError("catalogId")}
        </label>
        <label>Schema
          <input name="schema" maxLength={255} value={schema} placeholder="(the catalog's default)"
            onChange={(e) => setSchema(e.target.value)} {...described("schema")} />
          {fieldError("schema")}
        </label>
        {editing
          ? <p className="muted">Shared with: {teamNames.join(", ")}</p>
          : <TeamPicker teams={teams} selected={teamIds} onChange={setTeamIds} error={fieldError("teamIds")} />}
        {shownError && <p className="error" role="alert">{error}</p>}
        {saved && <p className="muted" role="status">Saved.</p>}
        <div className="actions">
          <button type="submit" disabled={busy}>{busy ? "Saving…" : editing ? "Save query" : "Save new query"}</button>
          {editing && <button type="button" className="danger" onClick={() => void remove()} disabled={busy}>Delete query</button>}
        </div>
      </form>
    </section>
  );
}
