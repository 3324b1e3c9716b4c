/** The organization-admin pages under one entry of the main navigation, with their own tabs, so the top bar
 * stays short at laptop and tablet widths. */
import { NavLink, useLocation } from "react-router";

const PAGES = [
  { to: "/members", label: "Members" },
  { to: "/service-accounts", label: "Service accounts" },
  { to: "/policies", label: "Policies" },
  { to: "/identity-providers", label: "Identity providers" },
  { to: "/audit", label: "Audit log" },
];

const isAdminPath = (path: string) => PAGES.some((p) => path === p.to || path.startsWith(`${p.to}/`));

/** The main navigation's entry: active on any of the admin pages. */
export function OrganizationLink() {
  const { pathname } = useLocation();
  return <NavLink to="/members" className={() => (isAdminPath(pathname) ? "active" : "")}>Organization</NavLink>;
}

/** The tabs above each admin page. */
export function AdminTabs() {
  return (
    <nav className="tabs" aria-label="Organization">
      {PAGES.map((p) => <NavLink key={p.to} to={p.to}>{p.label}</NavLink>)}
    </nav>
  );
}
