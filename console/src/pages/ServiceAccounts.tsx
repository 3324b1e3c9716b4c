/** Service accounts of the organization (identities for programs, which hold API keys), a page at a time like
 * the API (limit + marker), and a form to create one; each opens its own page for its keys. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { described, FieldError, MarkerPager, useAction, useMarkerPaging, when } from "../admin/ui";
import { AdminTabs } from "../admin/nav";

type ServiceAccount = components["schemas"]["ServiceAccountView"];
const PAGE_SIZE = 25;

export default function ServiceAccounts() {
  const paging = useMarkerPaging();
  const [items, setItems] = useState<ServiceAccount[] | null>(null);
  const [nextMarker, setNextMarker] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/org/service-accounts", {
        params: { query: { limit: PAGE_SIZE, ...(paging.marker ? { marker: paging.marker } : {}) } },
      }));
      setItems(list.items);
      setNextMarker(list.marker ?? null);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [paging.marker]);
  useEffect(() => { void load(); }, [load]);

  return (
    <section>
      <AdminTabs />
      <h1>Service accounts</h1>
      <p className="muted">Identities for programs (CI, schedulers, scripts): they sign in with API keys, and act with
        the permissions their policy gives them.</p>
      <CreateServiceAccount />
      {error && <p className="error" role="alert">{error}</p>}
      {items === null && !error && <p className="muted" role="status">Loading service accounts…</p>}
      {items !== null && items.length === 0 && paging.page === 1 && (
        <p className="empty">No service accounts yet. Create one above, then give it an API key.</p>
      )}
      {items !== null && items.length > 0 && (
        <table aria-label="Service accounts">
          <thead><tr><th>Name</th><th>Description</th><th>Created</th></tr></thead>
          <tbody>
            {items.map((sa) => (
              <tr key={sa.id}>
                <td><Link to={`/service-accounts/${sa.id}`}>{sa.name}</Link></td>
                <td>{sa.description ?? ""}</td>
                <td>{when(sa.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <MarkerPager page={paging.page} nextMarker={nextMarker} onNext={paging.next} onPrevious={paging.previous} />
    </section>
  );
}

function CreateServiceAccount() {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const { busy, error, fields, run } = useAction();

  async function submit(e: FormEvent) {
    e.preventDefault();
    await run(async () => {
      const created = await call(api.POST("/api/v1/org/service-accounts", {
        body: { name, description: description || null },
      }));
      navigate(`/service-accounts/${created.id}`);
    });
  }

  return (
    <form className="inline" onSubmit={submit} aria-label="Create service account" noValidate>
      <label>Service account name
        <input name="name" required maxLength={255} value={name} onChange={(e) => setName(e.target.value)}
          {...described(fields, "name")} />
        <FieldError errors={fields} name="name" />
      </label>
      <label>Description
        <input name="description" maxLength={2000} value={description} onChange={(e) => setDescription(e.target.value)}
          {...described(fields, "description")} />
        <FieldError errors={fields} name="description" />
      </label>
      <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create service account"}</button>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
