/** Save a query, or change one: name, description, SQL, an optional catalog (none detaches it) and schema, and
 * the teams it is shared with (picked when created, then shared and unshared on its page: teamSharing). The API's
 * field errors are shown beside the fields. Deleting is refused (409, said in the API's words) while an active job
 * uses the query. `?catalog=ID` preselects a catalog. */
import { useEffect, useState, type FormEvent } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { useFormActions } from "../fields";
import { TeamPicker } from "../teamPicker";
import { QUERY_SHARING, TeamSharing, useTeamChoice } from "../teamSharing";
import "../workloads.css";

type Query = components["schemas"]["QueryView"];
type Catalog = components["schemas"]["CatalogView"];
const FORM_FIELDS: Record<string, string> = { name: "name", description: "description", sql: "sql",
  catalogId: "catalogId", schema: "schema", teamIds: "teamIds" };

export default function QueryForm() {
  const { queryId } = useParams();
  const [params] = useSearchParams();
  const editing = Boolean(queryId);
  const [query, setQuery] = useState<Query | null>(null);
  const [catalogs, setCatalogs] = useState<Catalog[]>([]);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [sql, setSql] = useState("");
  const [catalogId, setCatalogId] = useState(params.get("catalog") ?? "");
  const [schema, setSchema] = useState("");
  const { error, setError, busy, save, remove, feedback, fieldError, described } = useFormActions(FORM_FIELDS, "form");
  const { teams, teamIds, setTeamIds } = useTeamChoice(!editing, setError);

  useEffect(() => {
    call(api.GET("/api/v1/data/catalogs", { params: { query: { limit: 100 } } }))
      .then((list) => setCatalogs(list.included.catalogs), () => {});
  }, []);

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
    }, (e: Error) => setError(e.message));
  }, [queryId, setError]);

  function submit(e: FormEvent) {
    e.preventDefault();
    const fields = { name, description: description || null, sql, catalogId: catalogId || null, schema: schema || null };
    void save(async () => {
      if (!queryId) {
        const created = await call(api.POST("/api/v1/workloads/queries", { body: { ...fields, teamIds } }));
        return `/queries/${created.id}`;
      }
      setQuery(await call(api.PATCH("/api/v1/workloads/queries/{query}", {
        params: { path: { query: queryId } }, body: fields,
      })));
    });
  }

  const onDelete = () => queryId && void remove(`Delete the saved query ${query?.name ?? ""}?`,
    () => call(api.DELETE("/api/v1/workloads/queries/{query}", { params: { path: { query: queryId } } })), "/queries");

  if (editing && !query && !error) return <p className="muted" role="status">Loading query…</p>;
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
        {!editing && <TeamPicker teams={teams} selected={teamIds} onChange={setTeamIds} error={fieldError("teamIds")} />}
        {feedback}
        <div className="actions">
          <button type="submit" disabled={busy}>{busy ? "Saving…" : editing ? "Save query" : "Save new query"}</button>
          {editing && <button type="button" className="danger" onClick={onDelete} disabled={busy}>Delete query</button>}
        </div>
      </form>
      {queryId && query && <TeamSharing sharing={QUERY_SHARING} id={queryId} what="saved query" />}
    </section>
  );
}
