/** Members of the organization with their roles and teams (a page at a time, sorted and searched like the API),
 * and invitations: invite by email with a role and a team, resend (a new link), revoke. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { described, FieldError, Pager, useAction, when } from "../admin/ui";
import { AdminTabs } from "../admin/nav";

type MemberItem = components["schemas"]["MemberItem"];
type Invitation = components["schemas"]["InvitationView"];
type RoleItem = components["schemas"]["RoleItem"];
type TeamItem = components["schemas"]["TeamItem"];
type InvitationState = "pending" | "expired" | "accepted";
const PAGE_SIZE = 25;

export default function Members() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const sortBy = params.get("sort") === "email" ? "email" : "name";
  const sortDirection = params.get("dir") === "desc" ? "desc" : "asc";
  const search = params.get("q") ?? "";
  const [roles, setRoles] = useState<RoleItem[]>([]);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [members, setMembers] = useState<MemberItem[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const [invitesVersion, setInvitesVersion] = useState(0);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const action = useAction();

  useEffect(() => {
    call(api.GET("/api/v1/org/roles", { params: { query: { limit: 100 } } }))
      .then((list) => setRoles(list.items), () => {});
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => setTeams(list.items), () => {});
  }, []);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/org/members", {
        params: { query: { page, limit: PAGE_SIZE, sortBy, sortDirection, ...(search ? { filter: search } : {}) } },
      }));
      setMembers(list.items);
      setTotal(list.total);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [page, sortBy, sortDirection, search]);
  useEffect(() => { void load(); }, [load]);

  const changeRole = (item: MemberItem, roleId: string) => void action.run(async () => {
    setNotice(null);
    try {
      await call(api.PUT("/api/v1/org/members/{member}/roles", {
        params: { path: { member: item.member.id } }, body: { roleIds: [roleId] },
      }));
      setNotice(`${item.member.displayName} is now ${roleName(roleId)}.`);
    } finally {
      await load();  // a refused change shows the role the member still has
    }
  });
  const remove = (item: MemberItem) => void action.run(async () => {
    setNotice(null);
    await call(api.DELETE("/api/v1/org/members/{member}", { params: { path: { member: item.member.id } } }));
    setConfirm(null);
    setNotice(`${item.member.displayName} was removed from the organization, with their team memberships.`);
    await load();
  });

  const go = (changes: Record<string, string>) => setParams({ ...Object.fromEntries(params), ...changes });
  const roleName = (id: string) => roles.find((r) => r.role.id === id)?.role.name ?? id;
  const teamName = (id: string) => teams.find((t) => t.team.id === id)?.team.name ?? id;
  const sortButton = (field: "name" | "email", label: string) => {
    const active = sortBy === field;
    const next = active && sortDirection === "asc" ? "desc" : "asc";
    return (
      <button type="button" className="link" onClick={() => go({ sort: field, dir: next, page: "1" })}
        aria-label={`Sort by ${label.toLowerCase()}, ${next === "asc" ? "ascending" : "descending"}`}>
        {label} {active ? (sortDirection === "asc" ? "▲" : "▼") : ""}
      </button>
    );
  };

  return (
    <section>
      <AdminTabs />
      <h1>Members</h1>
      <InviteForm roles={roles} teams={teams} onInvited={() => setInvitesVersion((v) => v + 1)} />
      <Invitations version={invitesVersion} roleName={roleName} teamName={teamName} />
      <h2>People in the organization</h2>
      <form className="searchbar" role="search" onSubmit={(e) => {
        e.preventDefault();
        const q = new FormData(e.currentTarget).get("q");
        go({ q: typeof q === "string" ? q : "", page: "1" });
      }}>
        <label>Find a member<input name="q" type="search" defaultValue={search} placeholder="Name or email" /></label>
        <button type="submit">Search</button>
      </form>
      {(error || action.error) && <p className="error" role="alert">{error ?? action.error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {members === null && !error && <p className="muted" role="status">Loading members…</p>}
      {members !== null && members.length === 0 && (
        <p className="empty">{search ? `No member matches “${search}”.` : "No members yet: invite someone above."}</p>
      )}
      {members !== null && members.length > 0 && (
        <table aria-label="Members">
          <thead>
            <tr><th>{sortButton("name", "Name")}</th><th>{sortButton("email", "Email")}</th><th>Roles</th>
              <th>Teams</th><th>Status</th><th></th></tr>
          </thead>
          <tbody>
            {members.map((item) => {
              const { member, roleIds, teams: memberTeams } = item;
              return (
              <tr key={member.id} data-member-id={member.id}>
                <td>{member.displayName}</td>
                <td>{member.email}</td>
                <td>
                  <label><span className="visually-hidden">Role of {member.displayName}</span>
                    <select value={roleIds[0] ?? ""} disabled={action.busy || roles.length === 0}
                      onChange={(e) => changeRole(item, e.target.value)}>
                      {roles.length === 0 && roleIds.map((id) => <option key={id} value={id}>{id}</option>)}
                      {roles.map((r) => <option key={r.role.id} value={r.role.id}>{r.role.name}</option>)}
                    </select>
                  </label>
                  {roleIds.length > 1 && <small className="muted"> also {roleIds.slice(1).map(roleName).join(", ")}</small>}
                </td>
                <td>{memberTeams.length ? memberTeams.map((t) => t.name).join(", ") : <span className="muted">None</span>}</td>
                <td><span className={`status status-${member.status}`}>{member.status}</span></td>
                <td className="row-actions">
                  {confirm === member.id ? (
                    <>
                      <button type="button" className="danger" disabled={action.busy} onClick={() => remove(item)}>Yes, remove</button>
                      <button type="button" className="link" onClick={() => setConfirm(null)}>Keep</button>
                    </>
                  ) : <button type="button" className="danger" onClick={() => setConfirm(member.id)}>Remove</button>}
                </td>
              </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <Pager page={page} total={total} pageSize={PAGE_SIZE} onPage={(p) => go({ page: String(p) })} label="Member pages" />
    </section>
  );
}

function InviteForm({ roles, teams, onInvited }: { roles: RoleItem[]; teams: TeamItem[]; onInvited: () => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("MEMBER");
  const [team, setTeam] = useState("");
  const [sent, setSent] = useState<string | null>(null);
  const { busy, error, fields, run } = useAction();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setSent(null);
    const ok = await run(async () => {
      const created = await call(api.POST("/api/v1/org/invites", {
        body: { email, roleIds: [role], teamIds: team ? [team] : [] },
      }));
      setSent(created.email);
    });
    if (ok) {
      setEmail("");
      onInvited();
    }
  }

  return (
    <form className="inline" onSubmit={submit} aria-label="Invite a member" noValidate>
      <label>Email
        <input name="email" type="email" required value={email} onChange={(e) => setEmail(e.target.value)}
          {...described(fields, "email")} />
        <FieldError errors={fields} name="email" />
      </label>
      <label>Role
        <select name="role" value={role} onChange={(e) => setRole(e.target.value)} {...described(fields, "roleIds")}>
          {(roles.length ? roles.map((r) => r.role) : [{ id: "MEMBER", name: "Member" }]).map((r) =>
            <option key={r.id} value={r.id}>{r.name}</option>)}
        </select>
        <FieldError errors={fields} name="roleIds" />
      </label>
      <label>Team
        <select name="team" value={team} onChange={(e) => setTeam(e.target.value)} {...described(fields, "teamIds")}>
          <option value="">No team</option>
          {teams.map(({ team: t }) => <option key={t.id} value={t.id}>{t.name}</option>)}
        </select>
        <FieldError errors={fields} name="teamIds" />
      </label>
      <button type="submit" disabled={busy}>{busy ? "Sending…" : "Send invitation"}</button>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
      {sent && <p className="ok" role="status">Invitation sent to {sent}.</p>}
    </form>
  );
}

function Invitations({ version, roleName, teamName }: {
  version: number; roleName: (id: string) => string; teamName: (id: string) => string;
}) {
  const [state, setState] = useState<InvitationState | "">("pending");
  const [page, setPage] = useState(1);
  const [items, setItems] = useState<Invitation[] | null>(null);
  const [total, setTotal] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const { busy, error, run } = useAction();

  const load = useCallback(async () => {
    await run(async () => {
      const list = await call(api.GET("/api/v1/org/invites", {
        params: { query: { page, limit: PAGE_SIZE, sortBy: "createdAt", sortDirection: "desc",
          ...(state ? { status: state } : {}) } },
      }));
      setItems(list.items);
      setTotal(list.total);
    });
  }, [page, state, run]);
  useEffect(() => { void load(); }, [load, version]);

  const resend = (inv: Invitation) => void run(async () => {
    await call(api.POST("/api/v1/org/invites/{invitation}/resend", { params: { path: { invitation: inv.id } } }));
    setNotice(`A new link was sent to ${inv.email}; the previous one no longer works.`);
    await load();
  });
  const revoke = (inv: Invitation) => void run(async () => {
    await call(api.DELETE("/api/v1/org/invites/{invitation}", { params: { path: { invitation: inv.id } } }));
    setConfirming(null);
    setNotice(`The invitation to ${inv.email} was revoked; its link no longer works.`);
    await load();
  });

  return (
    <section aria-labelledby="invitations-heading">
      <div className="title-row">
        <h2 id="invitations-heading">Invitations</h2>
        <label className="filter">Show
          <select value={state} onChange={(e) => { setState(e.target.value as InvitationState | ""); setPage(1); }}>
            <option value="pending">Pending</option>
            <option value="expired">Expired</option>
            <option value="accepted">Accepted</option>
            <option value="">All</option>
          </select>
        </label>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {items === null && !error && <p className="muted" role="status">Loading invitations…</p>}
      {items !== null && items.length === 0 && (
        <p className="empty">No {state || ""} invitations. Invite someone by email with the form above.</p>
      )}
      {items !== null && items.length > 0 && (
        <table aria-label="Invitations">
          <thead><tr><th>Email</th><th>Role</th><th>Teams</th><th>Status</th><th>Expires</th><th></th></tr></thead>
          <tbody>
            {items.map((inv) => (
              <tr key={inv.id} data-invitation-id={inv.id}>
                <td>{inv.email}</td>
                <td>{inv.roleIds.map(roleName).join(", ")}</td>
                <td>{inv.teamIds.length ? inv.teamIds.map(teamName).join(", ") : <span className="muted">None</span>}</td>
                <td><span className={`status status-${inv.status}`}>{inv.status}</span></td>
                <td>{when(inv.expiresAt)}</td>
                <td className="row-actions">
                  {inv.status !== "accepted" && (confirming === inv.id ? (
                    <>
                      <span>Revoke the invitation to {inv.email}?</span>
                      <button type="button" className="danger" disabled={busy} onClick={() => revoke(inv)}>Yes, revoke</button>
                      <button type="button" className="link" onClick={() => setConfirming(null)}>Keep it</button>
                    </>
                  ) : (
                    <>
                      <button type="button" disabled={busy} onClick={() => resend(inv)}>Resend</button>
                      <button type="button" className="danger" disabled={busy} onClick={() => setConfirming(inv.id)}>Revoke</button>
                    </>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager page={page} total={total} pageSize={PAGE_SIZE} onPage={setPage} label="Invitation pages" />
    </section>
  );
}
