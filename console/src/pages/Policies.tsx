/** Organization policies: extra permissions granted organization-wide to one principal (a member, a team or a
 * service account), listed like the API (limit + marker); set one with the catalog's grantable permissions as
 * checkboxes (setOrganizationPolicy replaces the principal's policy), edit or delete it. */
import { useCallback, useEffect, useMemo, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { described, FieldError, MarkerPager, useAction, useMarkerPaging, when } from "../admin/ui";
import { AdminTabs } from "../admin/nav";

type Policy = components["schemas"]["PolicyView"];
type Permission = components["schemas"]["PermissionItem"];
type PrincipalType = components["schemas"]["PrincipalRef"]["type"];
interface Choice { type: PrincipalType; id: string; name: string }
const PAGE_SIZE = 25;
const KIND: Record<PrincipalType, string> = { user: "Member", team: "Team", service_account: "Service account" };

export default function Policies() {
  const paging = useMarkerPaging();
  const [policies, setPolicies] = useState<Policy[] | null>(null);
  const [nextMarker, setNextMarker] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [permissions, setPermissions] = useState<Permission[]>([]);
  const [choices, setChoices] = useState<Choice[]>([]);
  const [editing, setEditing] = useState<Policy | null>(null);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [saves, setSaves] = useState(0);  // a saved policy empties the form
  const action = useAction();

  useEffect(() => {
    call(api.GET("/api/v1/auth/permissions")).then((list) => setPermissions(list.items.filter((p) => !p.systemOnly)),
      (e: Error) => setError(e.message));
    void Promise.all([
      call(api.GET("/api/v1/org/members", { params: { query: { limit: 100 } } })).then((l) =>
        l.items.map(({ member }) => ({ type: "user" as const, id: member.userId, name: `${member.displayName} (${member.email})` })),
      () => []),
      call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } })).then((l) =>
        l.items.map(({ team }) => ({ type: "team" as const, id: team.id, name: team.name })), () => []),
      call(api.GET("/api/v1/org/service-accounts", { params: { query: { limit: 100 } } })).then((l) =>
        l.items.map((sa) => ({ type: "service_account" as const, id: sa.id, name: sa.name })), () => []),
    ]).then((groups) => setChoices(groups.flat()));
  }, []);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/org/policies", {
        params: { query: { limit: PAGE_SIZE, ...(paging.marker ? { marker: paging.marker } : {}) } },
      }));
      setPolicies(list.items);
      setNextMarker(list.marker ?? null);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [paging.marker]);
  useEffect(() => { void load(); }, [load]);

  const nameOf = useMemo(() => {
    const names = new Map(choices.map((c) => [`${c.type}:${c.id}`, c.name]));
    return (p: Policy) => names.get(`${p.principal.type}:${p.principal.id}`) ?? p.principal.id;
  }, [choices]);

  const remove = (p: Policy) => void action.run(async () => {
    await call(api.DELETE("/api/v1/org/policies/{principal}", { params: { path: { principal: p.principal.id } } }));
    setConfirm(null);
    if (editing?.principal.id === p.principal.id) setEditing(null);
    setNotice(`The policy of ${nameOf(p)} was deleted.`);
    await load();
  });

  return (
    <section>
      <AdminTabs />
      <h1>Policies</h1>
      <p className="muted">A policy grants a member, a team or a service account extra permissions across the
        organization, on top of their roles.</p>
      <PolicyForm key={editing ? editing.principal.id : `new-${saves}`} editing={editing} choices={choices}
        permissions={permissions} onCancel={() => setEditing(null)} onSaved={(saved) => {
          setEditing(null);
          setSaves((n) => n + 1);
          setNotice(`Saved the policy of ${nameOf(saved)}.`);
          void load();
        }} />
      {(error || action.error) && <p className="error" role="alert">{error ?? action.error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {policies === null && !error && <p className="muted" role="status">Loading policies…</p>}
      {policies !== null && policies.length === 0 && paging.page === 1 && (
        <p className="empty">No policies yet. Roles give most people what they need; grant extra permissions with
          the form above, for example CanViewAuditLog to a service account that exports the log.</p>
      )}
      {policies !== null && policies.length > 0 && (
        <table aria-label="Policies">
          <thead><tr><th>Principal</th><th>Kind</th><th>Permissions</th><th>Updated</th><th></th></tr></thead>
          <tbody>
            {policies.map((p) => (
              <tr key={`${p.principal.type}:${p.principal.id}`} data-principal-id={p.principal.id}>
                <td>{nameOf(p)}</td>
                <td>{KIND[p.principal.type]}</td>
                <td>{p.permissions.length ? p.permissions.join(", ") : <span className="muted">None</span>}</td>
                <td>{when(p.updatedAt)}</td>
                <td className="row-actions">
                  {confirm === p.principal.id ? (
                    <>
                      <button type="button" className="danger" disabled={action.busy} onClick={() => remove(p)}>Yes, delete</button>
                      <button type="button" className="link" onClick={() => setConfirm(null)}>Keep it</button>
                    </>
                  ) : (
                    <>
                      <button type="button" onClick={() => setEditing(p)}>Edit</button>
                      <button type="button" className="danger" onClick={() => setConfirm(p.principal.id)}>Delete</button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <MarkerPager page={paging.page} nextMarker={nextMarker} onNext={paging.next} onPrevious={paging.previous}
        label="Policy pages" />
    </section>
  );
}

function PolicyForm({ editing, choices, permissions, onSaved, onCancel }: {
  editing: Policy | null; choices: Choice[]; permissions: Permission[]; onSaved: (p: Policy) => void;
  onCancel: () => void;
}) {
  const [principal, setPrincipal] = useState(editing?.principal.id ?? "");
  const [granted, setGranted] = useState<Set<string>>(new Set(editing?.permissions ?? []));
  const { busy, error, fields, run } = useAction();

  async function submit(e: FormEvent) {
    e.preventDefault();
    await run(async () => {
      const saved = await call(api.PUT("/api/v1/org/policies/{principal}", {
        params: { path: { principal } }, body: { permissions: [...granted].sort() },
      }));
      onSaved(saved);
    });
  }
  const toggle = (name: string) => setGranted((g) => {
    const next = new Set(g);
    if (next.has(name)) next.delete(name); else next.add(name);
    return next;
  });

  return (
    <form className="stack panel" onSubmit={submit} aria-label={editing ? "Edit policy" : "Set a policy"} noValidate>
      <h2>{editing ? "Edit policy" : "Set a policy"}</h2>
      <label>Principal
        <select name="principal" value={principal} onChange={(e) => setPrincipal(e.target.value)} required
          disabled={Boolean(editing)} {...described(fields, "principal")}>
          <option value="">Choose a member, team or service account…</option>
          {(["user", "team", "service_account"] as const).map((type) => (
            <optgroup key={type} label={`${KIND[type]}s`}>
              {choices.filter((c) => c.type === type).map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
            </optgroup>
          ))}
        </select>
        <FieldError errors={fields} name="principal" />
      </label>
      <fieldset aria-describedby={fields.permissions ? "permissions-error" : undefined}>
        <legend>Permissions</legend>
        {permissions.map((p) => (
          <label key={p.relation} title={p.description}>
            <input type="checkbox" name="permissions" value={p.relation} checked={granted.has(p.relation)}
              onChange={() => toggle(p.relation)} /> {p.relation}
          </label>
        ))}
      </fieldset>
      <FieldError errors={fields} name="permissions" />
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
      <div className="actions">
        <button type="submit" disabled={busy || !principal}>{busy ? "Saving…" : "Save policy"}</button>
        {editing && <button type="button" className="link" onClick={onCancel}>Cancel</button>}
      </div>
    </form>
  );
}
