/** Saved queries of the organization the caller may view (the API's listQueries), with their catalogs and teams. */
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import "../workloads.css";

type Query = components["schemas"]["QueryView"];
interface Row { query: Query; catalog: string | null; teams: string[] }

export default function Queries() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/workloads/queries", { params: { query: { limit: 100 } } })).then((list) => {
      const queries = new Map(list.included.queries.map((q) => [q.id, q]));
      const catalogs = new Map(list.included.catalogs.map((c) => [c.id, c.name]));
      const teams = new Map(list.included.teams.map((t) => [t.id, t.name]));
      setRows(list.items.flatMap((ref) => {
        const query = queries.get(ref.queryId);
        return query ? [{ query, catalog: ref.catalogId ? catalogs.get(ref.catalogId) ?? ref.catalogId : null,
          teams: ref.teamIds.map((id) => teams.get(id) ?? id) }] : [];
      }));
      setTotal(list.total);
    }, (e: Error) => setError(e.message));
  }, []);

  return (
    <section>
      <div className="title-row">
        <h1>Saved queries</h1>
        <Link className="button" to="/queries/new">New query</Link>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {rows === null && !error && <p className="muted" role="status">Loading saved queries…</p>}
      {rows !== null && rows.length === 0 && (
        <p className="empty">No saved queries yet. <Link to="/queries/new">Save one</Link>: SQL your teams can reuse,
          in jobs too.</p>
      )}
      {rows !== null && rows.length > 0 && (
        <table aria-label="Saved queries">
          <thead><tr><th>Name</th><th>Catalog</th><th>Teams</th><th>Updated</th></tr></thead>
          <tbody>
            {rows.map(({ query: q, catalog, teams }) => (
              <tr key={q.id}>
                <td><Link to={`/queries/${q.id}`}>{q.name}</Link>
                  {q.description && <><br /><small className="muted">{q.description}</small></>}</td>
                <td>{catalog ?? <span className="muted">None</span>}</td>
                <td>{teams.join(", ")}</td>
                <td>{new Date(q.updatedAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows !== null && total > rows.length && <p className="muted">Showing the first {rows.length} of {total} queries.</p>}
    </section>
  );
}
