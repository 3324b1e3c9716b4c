import { useEffect, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
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

/** The top bar and the page. Below tablet-landscape width (styles.css) the main navigation folds behind a Menu
 * button (aria-expanded; Escape closes it and gives the button the focus back; following a link closes it). */
export function Layout() {
  const { auth, organizations, signOut, switchOrganization } = useAuth();
  const { pathname } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  useEffect(() => setMenuOpen(false), [pathname]);
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== "Escape" || !menuOpen) return;
    setMenuOpen(false);
    menuButton.current?.focus();
  };
  return (
    <div className="shell">
      <header className="topbar" onKeyDown={onKeyDown}>
        <Link className="brand" to="/teams">Sailplane</Link>
        <button type="button" className="menu-button secondary" ref={menuButton} aria-expanded={menuOpen}
          aria-controls="main-nav" onClick={() => setMenuOpen((open) => !open)}>
          Menu
        </button>
        <nav aria-label="Main" id="main-nav" className={menuOpen ? "open" : undefined}
          onClick={(e) => { if ((e.target as HTMLElement).closest("a")) setMenuOpen(false); }}>
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
          <span className="muted email" title={auth?.email}>{auth?.email}</span>
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
