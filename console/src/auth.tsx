/** Who is signed in: the login token and the organization the console acts on (kept in localStorage). */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, call, loadAuth, setAuth, whenUnauthorized, type Auth } from "./api/client";

export interface Organization {
  id: string;
  name: string;
}

interface AuthState {
  auth: Auth | null;
  organizations: Organization[];
  /** After a successful login: find the user's organizations and keep the token (acting in `organizationId` when
   * given, e.g. the one an invitation just joined, else the user's default). */
  signIn: (token: string, email: string, organizationId?: string) => Promise<void>;
  signOut: () => Promise<void>;
  switchOrganization: (organizationId: string) => void;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [auth, setState] = useState<Auth | null>(loadAuth);
  const [organizations, setOrganizations] = useState<Organization[]>([]);

  const update = useCallback((next: Auth | null) => {
    setAuth(next);
    setState(next);
  }, []);

  useEffect(() => whenUnauthorized(() => update(null)), [update]);

  useEffect(() => {
    if (!auth) return;
    call(api.GET("/api/v1/me")).then(
      (me) => setOrganizations(me.organizations.map((o) => ({ id: o.id, name: o.name }))),
      () => {},
    );
  }, [auth?.token]); // eslint-disable-line react-hooks/exhaustive-deps

  const signIn = useCallback(async (token: string, email: string, organizationId?: string) => {
    const me = await call(api.GET("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } }));
    const acting = organizationId ?? me.organizationId ?? me.organizations[0]?.id ?? null;
    setOrganizations(me.organizations.map((o) => ({ id: o.id, name: o.name })));
    update({ token, email, organizationId: acting });
  }, [update]);

  const signOut = useCallback(async () => {
    try {
      await api.POST("/api/v1/auth/logout");
    } finally {
      update(null);
    }
  }, [update]);

  const switchOrganization = useCallback((organizationId: string) => {
    if (auth) update({ ...auth, organizationId });
  }, [auth, update]);

  const value = useMemo(() => ({ auth, organizations, signIn, signOut, switchOrganization }),
    [auth, organizations, signIn, signOut, switchOrganization]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}
