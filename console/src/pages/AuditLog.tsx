/** The organization's audit log, newest first like the API: who did what to which resource, when and from where.
 * Filters are listAuditEvents' own (action, resource type, resource ID, actor ID) and live in the URL, so a
 * filtered view is a link; pages follow the API's marker. A filter the API refuses shows its words beside it. */
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { api, ApiFailure, call } from "../api/client";
import type { components } from "../api/schema";
import { described, FieldError, MarkerPager, useMarkerPaging, when, type FieldErrors } from "../admin/ui";
import { AdminTabs } from "../admin/nav";

type AuditEvent = components["schemas"]["AuditEventView"];
const FILTERS = [
  { name: "action", label: "Action", placeholder: "e.g. invitation.create" },
  { name: "resourceType", label: "Resource type", placeholder: "e.g. team" },
  { name: "resourceId", label: "Resource ID", placeholder: "" },
  { name: "actorId", label: "Actor ID", placeholder: "member or service account" },
] as const;
type FilterName = (typeof FILTERS)[number]["name"];
const SIZES = [10, 25, 50, 100];

export default function AuditLog() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => Object.fromEntries(FILTERS.flatMap(({ name }) => {
    const value = params.get(name);
    return value ? [[name, value]] : [];
  })) as Partial<Record<FilterName, string>>, [params]);
  const limit = SIZES.includes(Number(params.get("limit"))) ? Number(params.get("limit")) : 25;
  const filterKey = JSON.stringify([filters, limit]);
  const paging = useMarkerPaging();
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [nextMarker, setNextMarker] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<FieldErrors>({});
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const { reset } = paging;

  useEffect(() => { reset(); }, [filterKey, reset]);
  useEffect(() => {
    call(api.GET("/api/v1/org/members", { params: { query: { limit: 100 } } })).then(
      (list) => setNames(new Map(list.items.map(({ member }) => [member.id, member.displayName || member.email]))),
      () => {});
    call(api.GET("/api/v1/org/service-accounts", { params: { query: { limit: 100 } } })).then(
      (list) => setNames((known) => new Map([...known, ...list.items.map((sa) => [sa.id, sa.name] as const)])),
      () => {});
  }, []);

  useEffect(() => {
    let live = true;
    setEvents(null);
    call(api.GET("/api/v1/org/audit-events", {
      params: { query: { limit, ...filters, ...(paging.marker ? { marker: paging.marker } : {}) } },
    })).then((list) => {
      if (!live) return;
      setEvents(list.items);
      setNextMarker(list.marker ?? null);
      setError(null);
      setFields({});
    }, (e: Error) => {
      if (!live) return;
      setEvents([]);
      setNextMarker(null);
      setFields(e instanceof ApiFailure ? e.fields : {});
      setError(e.message);
    });
    return () => { live = false; };
  }, [filterKey, paging.marker]); // eslint-disable-line react-hooks/exhaustive-deps

  function apply(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const next: Record<string, string> = {};
    for (const { name } of FILTERS) {
      const value = String(data.get(name) ?? "").trim();
      if (value) next[name] = value;
    }
    const size = String(data.get("limit") ?? "");
    if (size && size !== "25") next.limit = size;
    setParams(next);
  }

  const actor = (ev: AuditEvent) => ev.actorId
    ? <>{names.get(ev.actorId) ?? ev.actorId} <span className="muted">({ev.actorType})</span></>
    : <span className="muted">{ev.actorType}</span>;

  return (
    <section>
      <AdminTabs />
      <h1>Audit log</h1>
      <form className="inline" onSubmit={apply} aria-label="Filter audit events" key={params.toString()} noValidate>
        {FILTERS.map(({ name, label, placeholder }) => (
          <label key={name}>{label}
            <input name={name} defaultValue={filters[name] ?? ""} placeholder={placeholder}
              {...described(fields, name)} />
            <FieldError errors={fields} name={name} />
          </label>
        ))}
        <label>Per page
          <select name="limit" defaultValue={String(limit)}>
            {SIZES.map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
        </label>
        <button type="submit">Filter</button>
        {Object.keys(filters).length > 0 && (
          <button type="button" className="link" onClick={() => setParams({})}>Clear filters</button>
        )}
      </form>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
      {events === null && <p className="muted" role="status">Loading audit events…</p>}
      {events !== null && events.length === 0 && !error && (
        <p className="empty">{Object.keys(filters).length
          ? "No events match these filters. Clear a filter to see more."
          : "No events yet: changes to the organization (members, teams, policies, keys…) are recorded here."}</p>
      )}
      {events !== null && events.length > 0 && (
        <table aria-label="Audit events">
          <thead><tr><th>When ▼</th><th>Actor</th><th>Action</th><th>Resource</th><th>Outcome</th><th>Details</th></tr></thead>
          <tbody>
            {events.map((ev) => (
              <tr key={ev.id} data-event-id={ev.id}>
                <td>{when(ev.createdAt)}</td>
                <td>{actor(ev)}</td>
                <td><code>{ev.action}</code></td>
                <td>{ev.resourceType}{ev.resourceId && <><br /><code className="muted">{ev.resourceId}</code></>}</td>
                <td><span className={`status status-${ev.outcome}`}>{ev.outcome}</span></td>
                <td>
                  {Object.keys(ev.details).length > 0 && (
                    <details><summary>Show</summary><pre>{JSON.stringify(ev.details, null, 2)}</pre></details>
                  )}
                  {ev.ipAddress && <small className="muted">from {ev.ipAddress}</small>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <MarkerPager page={paging.page} nextMarker={nextMarker} onNext={paging.next} onPrevious={paging.previous}
        label="Audit event pages" />
    </section>
  );
}
