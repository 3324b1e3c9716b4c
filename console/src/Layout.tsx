import type { ReactNode } from "react";
import { Link, Navigate, NavLink, Outlet, useLocation } from "react-router";
import { OrganizationLink } from "./admin/nav";
import { useAuth } from "./auth";
import { ThemeToggle } from "./theme";

/** Pages behind sign-in: without a login, go to the sign-in page and come back here after. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { auth } = useAuth();
  const location = useLocation();
  if (!auth) {
    const next = location.pathname + location.search;
    return <Navigate to={`/signin${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`} replace />;
  }
  return <>{children}</>;
}

export function Layout() {
  const { auth, organizations, signOut, switchOrganization } = useAuth();
  return (
    <div className="shell">
      <header className="topbar">
        <Link className="brand" to="/teams">Sailplane</Link>
        <nav aria-label="Main">
          <NavLink to="/teams">Teams</NavLink>
          <NavLink to="/sessions">Sessions</NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
          {/* Workloads */}
          <NavLink to="/notebooks">Notebooks</NavLink>
          <NavLink to="/configs">Configs</NavLink>
          <NavLink to="/catalogs">Catalogs</NavLink>
          <NavLink to="/queries">Queries</NavLink>
          <NavLink to="/notifications">Notifications</NavLink>
          <OrganizationLink />
        </nav>
        <div className="account">
          {organizations.length > 1 ? (
            <label>
              <span className="visually-hidden">Organization</span>
              <select value={auth?.organizationId ?? ""} onChange={(e) => switchOrganization(e.target.value)}>
                {organizations.map((o) => <option key={o.id} value={o.id}>{o.name}</option>)}
              </select>
            </label>
          ) : organizations.length === 1 ? <span className="muted">{organizations[0].name}</span> : null}
          <span className="muted">{auth?.email}</span>
          <NavLink to="/account">Account</NavLink>
          <ThemeToggle />
          <button type="button" className="link" onClick={() => void signOut()}>Sign out</button>
        </div>
      </header>
      <main key={auth?.organizationId ?? ""}>
        <Outlet />
      </main>
    </div>
  );
}
