import { lazy, StrictMode, Suspense, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Navigate, RouterProvider } from "react-router";
import { AuthProvider } from "./auth";
import { Layout, RequireAuth } from "./Layout";
import { SignIn } from "./pages/SignIn";
import "./styles.css";
import { applyTheme, loadTheme } from "./theme";

applyTheme(loadTheme());  // before the first render: no flash of the other theme

// Pages behind sign-in load on first visit: the sign-in page ships only React, the router and the API client.
const Teams = lazy(() => import("./pages/Teams"));
const Sessions = lazy(() => import("./pages/Sessions"));
const SessionDetail = lazy(() => import("./pages/SessionDetail"));
const Jobs = lazy(() => import("./pages/Jobs"));
const JobForm = lazy(() => import("./pages/JobForm"));
const JobDetail = lazy(() => import("./pages/JobDetail"));
const RunDetail = lazy(() => import("./pages/RunDetail"));
// A job's versions and draft, with diffs.
const JobVersions = lazy(() => import("./pages/JobVersions"));
const JobVersion = lazy(() => import("./pages/JobVersion"));
// Workloads: notebooks (the notebook's own page is /notebook/:id: /notebooks/{id}/ is the notebook proxy's).
const Notebooks = lazy(() => import("./pages/Notebooks"));
const NotebookDetail = lazy(() => import("./pages/NotebookDetail"));
const Configs = lazy(() => import("./pages/Configs"));
const ConfigForm = lazy(() => import("./pages/ConfigForm"));
const ConfigDetail = lazy(() => import("./pages/ConfigDetail"));
const Catalogs = lazy(() => import("./pages/Catalogs"));
const CatalogForm = lazy(() => import("./pages/CatalogForm"));
const Queries = lazy(() => import("./pages/Queries"));
const QueryForm = lazy(() => import("./pages/QueryForm"));
const NotificationChannels = lazy(() => import("./pages/NotificationChannels"));
const NotificationRules = lazy(() => import("./pages/NotificationRules"));
const NotificationDeliveries = lazy(() => import("./pages/NotificationDeliveries"));
const NotFound = lazy(() => import("./pages/NotFound"));
// Organization admin, and the invitation link's page (public: the invitee may not have an account yet).
const Members = lazy(() => import("./pages/Members"));
const AcceptInvite = lazy(() => import("./pages/AcceptInvite"));
const ServiceAccounts = lazy(() => import("./pages/ServiceAccounts"));
const ServiceAccountDetail = lazy(() => import("./pages/ServiceAccountDetail"));
const AuditLog = lazy(() => import("./pages/AuditLog"));
const Policies = lazy(() => import("./pages/Policies"));
const IdentityProviders = lazy(() => import("./pages/IdentityProviders"));
// The pages the server's emails link to (public).
const VerifyEmail = lazy(() => import("./pages/EmailLinks").then((m) => ({ default: m.VerifyEmail })));
const ResetPassword = lazy(() => import("./pages/EmailLinks").then((m) => ({ default: m.ResetPassword })));
const TeamDetail = lazy(() => import("./pages/TeamDetail"));
// The signed-in person's own security: two-factor authentication and password.
const Account = lazy(() => import("./pages/Account"));

const loading = <p className="muted" role="status">Loading…</p>;
const page = (element: ReactNode) => <Suspense fallback={loading}>{element}</Suspense>;

const router = createBrowserRouter([
  { path: "/signin", element: <SignIn /> },
  { path: "/signin/sso", element: <SignIn sso /> },  // where single sign-on ends (sso.ts)
  { path: "/invites/:token", element: page(<AcceptInvite />) },
  { path: "/verify-email", element: page(<VerifyEmail />) },
  { path: "/reset-password", element: page(<ResetPassword />) },
  {
    element: <RequireAuth><Layout /></RequireAuth>,
    children: [
      { index: true, element: <Navigate to="/teams" replace /> },
      { path: "teams", element: page(<Teams />) },
      { path: "sessions", element: page(<Sessions />) },
      { path: "sessions/:sessionId", element: page(<SessionDetail />) },
      { path: "jobs", element: page(<Jobs />) },
      { path: "jobs/new", element: page(<JobForm key="new" />) },
      { path: "jobs/:jobId", element: page(<JobDetail />) },
      { path: "jobs/:jobId/edit", element: page(<JobForm key="edit" />) },
      { path: "jobs/:jobId/runs/:runId", element: page(<RunDetail />) },
      { path: "jobs/:jobId/versions", element: page(<JobVersions />) },
      { path: "jobs/:jobId/versions/:version", element: page(<JobVersion />) },
      // Workloads: notebooks, workload configs, catalogs and queries, notifications.
      { path: "notebooks", element: page(<Notebooks />) },
      { path: "notebook/:notebookId", element: page(<NotebookDetail />) },
      { path: "configs", element: page(<Configs />) },
      { path: "configs/new", element: page(<ConfigForm />) },
      { path: "configs/:configId", element: page(<ConfigDetail />) },
      { path: "catalogs", element: page(<Catalogs />) },
      { path: "catalogs/new", element: page(<CatalogForm key="new" />) },
      { path: "catalogs/:catalogId", element: page(<CatalogForm key="edit" />) },
      { path: "queries", element: page(<Queries />) },
      { path: "queries/new", element: page(<QueryForm key="new" />) },
      { path: "queries/:queryId", element: page(<QueryForm key="edit" />) },
      { path: "notifications", element: page(<NotificationChannels />) },
      { path: "notifications/rules", element: page(<NotificationRules />) },
      { path: "notifications/deliveries", element: page(<NotificationDeliveries />) },
      { path: "members", element: page(<Members />) },
      { path: "service-accounts", element: page(<ServiceAccounts />) },
      { path: "service-accounts/:serviceAccountId", element: page(<ServiceAccountDetail />) },
      { path: "audit", element: page(<AuditLog />) },
      { path: "policies", element: page(<Policies />) },
      { path: "identity-providers", element: page(<IdentityProviders />) },
      { path: "teams/:teamId", element: page(<TeamDetail />) },
      { path: "account", element: page(<Account />) },
      { path: "*", element: page(<NotFound />) },
    ],
  },
]);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <AuthProvider>
      <RouterProvider router={router} />
    </AuthProvider>
  </StrictMode>,
);
