/** Catalogs of the organization the caller may view (the API's listCatalogs, by name): the data sources Sail
 * sessions and saved queries use. */
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import "../workloads.css";

type Catalog = components["schemas"]["CatalogView"];
interface Row { catalog: Catalog; teams: string[] }

export default function Catalogs() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/data/catalogs", { params: { query: { limit: 100 } } })).then((list) => {
      const catalogs = new Map(list.included.catalogs.map((c) => [c.id, c]));
      const teams = new Map(list.included.teams.map((t) => [t.id, t.name]));
      setRows(list.items.flatMap((ref) => {
        const catalog = catalogs.get(ref.catalogId);
        return catalog ? [{ catalog, teams: ref.teamIds.map((id) => teams.get(id) ?? id) }] : [];
      }));
      setTotal(list.total);
    }, (e: Error) => setError(e.message));
  }, []);

  return (
    <section>
      <div className="title-row">
        <h1>Catalogs</h1>
        <Link className="button" to="/catalogs/new">New catalog</Link>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {rows === null && !error && <p className="muted" role="status">Loading catalogs…</p>}
      {rows !== null && rows.length === 0 && (
        <p className="empty">No catalogs yet. <Link to="/catalogs/new">Register one</Link> (Iceberg REST, Unity, Glue,
          OneLake or a local warehouse) for your teams' sessions and saved queries.</p>
      )}
      {rows !== null && rows.length > 0 && (
        <table aria-label="Catalogs">
          <thead><tr><th>Name ▲</th><th>Provider</th><th>Teams</th><th>Status</th></tr></thead>
          <tbody>
            {rows.map(({ catalog: c, teams }) => (
              <tr key={c.id}>
                <td><Link to={`/catalogs/${c.id}`}>{c.name}</Link></td>
                <td>{c.provider}</td>
                <td>{teams.join(", ") || <span className="muted">—</span>}</td>
                <td>{c.status}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows !== null && total > rows.length && <p className="muted">Showing the first {rows.length} of {total} catalogs.</p>}
    </section>
  );
}
