/** One team: its members and their team roles (a page at a time, sorted like the API), adding a member of the
 * organization with a role, changing a member's role, removing one, and deleting the team. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { described, FieldError, Pager, useAction } from "../admin/ui";

type Team = components["schemas"]["TeamView"];
type TeamMember = components["schemas"]["TeamMemberItem"];
type RoleItem = components["schemas"]["RoleItem"];
type OrgMember = components["schemas"]["MemberItem"];
const PAGE_SIZE = 25;

export default function TeamDetail() {
  const { teamId = "" } = useParams();
  const navigate = useNavigate();
  const [team, setTeam] = useState<Team | null>(null);
  const [roles, setRoles] = useState<RoleItem[]>([]);
  const [members, setMembers] = useState<TeamMember[] | null>(null);
  const [total, setTotal] = useState(0);
  const [page, setPage] = useState(1);
  const [sortDirection, setSortDirection] = useState<"asc" | "desc">("asc");
  const [loadError, setLoadError] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<string | null>(null);  // a member's ID, or "team"
  const [notice, setNotice] = useState<string | null>(null);
  const action = useAction();
  const path = { team: teamId };

  useEffect(() => {
    call(api.GET("/api/v1/org/teams/{team}", { params: { path: { team: teamId } } }))
      .then((d) => setTeam(d.team), (e: Error) => setLoadError(e.message));
    call(api.GET("/api/v1/org/team-roles", { params: { query: { limit: 100 } } })).then((l) => setRoles(l.items), () => {});
  }, [teamId]);

  const load = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/org/teams/{team}/members", {
        params: { path: { team: teamId }, query: { page, limit: PAGE_SIZE, sortBy: "name", sortDirection } },
      }));
      setMembers(list.items);
      setTotal(list.total);
    } catch (e) {
      setLoadError((e as Error).message);
    }
  }, [teamId, page, sortDirection]);
  useEffect(() => { void load(); }, [load]);

  const roleName = (id: string) => roles.find((r) => r.role.id === id)?.role.name ?? id;
  const changeRole = (m: TeamMember, roleId: string) => void action.run(async () => {
    await call(api.PUT("/api/v1/org/teams/{team}/members/{member}/roles", {
      params: { path: { team: teamId, member: m.member.id } }, body: { roleIds: [roleId] },
    }));
    setNotice(`${m.member.displayName} is now ${roleName(roleId)} in ${team?.name ?? "the team"}.`);
    await load();
  });
  const removeMember = (m: TeamMember) => void action.run(async () => {
    await call(api.DELETE("/api/v1/org/teams/{team}/members/{member}", {
      params: { path: { team: teamId, member: m.member.id } },
    }));
    setConfirm(null);
    setNotice(`${m.member.displayName} left ${team?.name ?? "the team"}.`);
    await load();
  });
  const deleteTeam = () => void action.run(async () => {
    await call(api.DELETE("/api/v1/org/teams/{team}", { params: { path } }));
    navigate("/teams", { replace: true });
  });

  if (loadError && !team) {
    return <section><p><Link to="/teams">← Teams</Link></p><p className="error" role="alert">{loadError}</p></section>;
  }
  if (!team) return <p className="muted" role="status">Loading team…</p>;
  return (
    <section>
      <p><Link to="/teams">← Teams</Link></p>
      <div className="title-row">
        <h1>{team.name}</h1>
        {confirm === "team" ? (
          <div className="row-actions">
            <span>Delete {team.name}?</span>
            <button type="button" className="danger" disabled={action.busy} onClick={deleteTeam}>Yes, delete</button>
            <button type="button" className="link" onClick={() => setConfirm(null)}>Keep it</button>
          </div>
        ) : <button type="button" className="danger" onClick={() => setConfirm("team")}>Delete team</button>}
      </div>
      {team.description && <p>{team.description}</p>}
      <p className="muted">New members join as {roleName(team.defaultRoleId)} unless you choose another role.{" "}
        <Link to={`/sessions?team=${encodeURIComponent(team.id)}`}>Sessions of this team</Link></p>
      <AddMember teamId={teamId} roles={roles} defaultRoleId={team.defaultRoleId} onAdded={(name) => {
        setNotice(`${name} joined ${team.name}.`);
        void load();
      }} />
      {action.error && <p className="error" role="alert">{action.error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {members !== null && members.length === 0 && page === 1 && (
        <p className="empty">No members yet. Add people of the organization above; invite new people from
          {" "}<Link to="/members">Members</Link>.</p>
      )}
      {members !== null && members.length > 0 && (
        <table aria-label="Team members">
          <thead><tr>
            <th><button type="button" className="link" onClick={() => { setSortDirection(sortDirection === "asc" ? "desc" : "asc"); setPage(1); }}
              aria-label={`Sort by name, ${sortDirection === "asc" ? "descending" : "ascending"}`}>
              Name {sortDirection === "asc" ? "▲" : "▼"}</button></th>
            <th>Email</th><th>Team role</th><th></th></tr></thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.member.id} data-member-id={m.member.id}>
                <td>{m.member.displayName}</td>
                <td>{m.member.email}</td>
                <td>
                  <label><span className="visually-hidden">Team role of {m.member.displayName}</span>
                    <select value={m.roleIds[0] ?? ""} disabled={action.busy}
                      onChange={(e) => changeRole(m, e.target.value)}>
                      {roles.map((r) => <option key={r.role.id} value={r.role.id}>{r.role.name}</option>)}
                    </select>
                  </label>
                </td>
                <td className="row-actions">
                  {confirm === m.member.id ? (
                    <>
                      <button type="button" className="danger" disabled={action.busy} onClick={() => removeMember(m)}>Yes, remove</button>
                      <button type="button" className="link" onClick={() => setConfirm(null)}>Keep</button>
                    </>
                  ) : <button type="button" className="danger" onClick={() => setConfirm(m.member.id)}>Remove</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager page={page} total={total} pageSize={PAGE_SIZE} onPage={setPage} label="Team member pages" />
    </section>
  );
}

function AddMember({ teamId, roles, defaultRoleId, onAdded }: {
  teamId: string; roles: RoleItem[]; defaultRoleId: string; onAdded: (name: string) => void;
}) {
  const [query, setQuery] = useState("");
  const [found, setFound] = useState<OrgMember[]>([]);
  const [member, setMember] = useState("");
  const [role, setRole] = useState(defaultRoleId);
  const { busy, error, fields, run } = useAction();

  useEffect(() => {
    const timer = window.setTimeout(() => {
      call(api.GET("/api/v1/org/members", { params: { query: { limit: 20, ...(query ? { filter: query } : {}) } } }))
        .then((l) => {
          setFound(l.items);
          setMember((m) => (l.items.some((i) => i.member.id === m) ? m : l.items[0]?.member.id ?? ""));
        }, () => {});
    }, 250);
    return () => window.clearTimeout(timer);
  }, [query]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const chosen = found.find((f) => f.member.id === member);
    await run(async () => {
      await call(api.PUT("/api/v1/org/teams/{team}/members/{member}", {
        params: { path: { team: teamId, member } }, body: { roleIds: [role] },
      }));
      onAdded(chosen?.member.displayName ?? "The member");
    });
  }

  return (
    <form className="inline" onSubmit={submit} aria-label="Add a team member" noValidate>
      <label>Find a member<input type="search" value={query} placeholder="Name or email"
        onChange={(e) => setQuery(e.target.value)} /></label>
      <label>Member
        <select name="member" value={member} onChange={(e) => setMember(e.target.value)} {...described(fields, "member")}>
          {found.length === 0 && <option value="">No member matches</option>}
          {found.map(({ member: m }) => <option key={m.id} value={m.id}>{m.displayName} ({m.email})</option>)}
        </select>
        <FieldError errors={fields} name="member" />
      </label>
      <label>Team role
        <select name="role" value={role} onChange={(e) => setRole(e.target.value)} {...described(fields, "roleIds")}>
          {roles.map((r) => <option key={r.role.id} value={r.role.id}>{r.role.name}</option>)}
        </select>
        <FieldError errors={fields} name="roleIds" />
      </label>
      <button type="submit" disabled={busy || !member}>{busy ? "Adding…" : "Add to team"}</button>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
