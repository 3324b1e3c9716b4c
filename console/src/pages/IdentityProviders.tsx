/** Identity providers for single sign-on (OpenID Connect): the organization's providers a page at a time (limit +
 * marker), set one up automatically from its URL (discovery + Dynamic Client Registration) or by hand with a
 * client registered at the provider (its redirect URI shown to copy), test the connection (each check in plain
 * words), prove each email domain (the DNS TXT record to publish, then the server's check), replace the client
 * secret (the old one is no longer used from then on), switch it on or off, delete it. The client secret is
 * write-only: the API only says whether one is set and when it was last replaced. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { CopyButton, described, FieldError, MarkerPager, useAction, useMarkerPaging, when } from "../admin/ui";
import { AdminTabs } from "../admin/nav";

type Provider = components["schemas"]["IdentityProviderView"];
type ProviderType = components["schemas"]["IdentityProviderType"];
type TestResult = components["schemas"]["TestResult"];
type DomainClaim = components["schemas"]["DomainVerification"];
const PAGE_SIZE = 25;

const list = (text: string) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

export default function IdentityProviders() {
  const paging = useMarkerPaging();
  const [types, setTypes] = useState<ProviderType[]>([]);
  const [providers, setProviders] = useState<Provider[] | null>(null);
  const [nextMarker, setNextMarker] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tests, setTests] = useState<Record<string, TestResult>>({});
  const [confirm, setConfirm] = useState<string | null>(null);
  const [rotating, setRotating] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [mode, setMode] = useState<"auto" | "manual">("auto");
  const action = useAction();

  useEffect(() => {
    call(api.GET("/api/v1/auth/identity-provider-types")).then((l) => setTypes(l.items), () => {});
  }, []);
  const load = useCallback(async () => {
    try {
      const l = await call(api.GET("/api/v1/auth/idps", {
        params: { query: { limit: PAGE_SIZE, ...(paging.marker ? { marker: paging.marker } : {}) } },
      }));
      setProviders(l.items);
      setNextMarker(l.marker ?? null);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [paging.marker]);
  useEffect(() => { void load(); }, [load]);

  const test = (p: Provider) => void action.run(async () => {
    const result = await call(api.POST("/api/v1/auth/idps/{idp}/test", { params: { path: { idp: p.id } } }));
    setTests((t) => ({ ...t, [p.id]: result }));
    await load();
  });
  const setStatus = (p: Provider, status: "active" | "disabled") => void action.run(async () => {
    await call(api.PATCH("/api/v1/auth/idps/{idp}", { params: { path: { idp: p.id } }, body: { status } }));
    setNotice(`${p.name} is now ${status}.`);
    await load();
  });
  const remove = (p: Provider) => void action.run(async () => {
    await call(api.DELETE("/api/v1/auth/idps/{idp}", { params: { path: { idp: p.id } } }));
    setConfirm(null);
    setNotice(`${p.name} was deleted: its members sign in with a password or a one-time code from now on.`);
    await load();
  });
  const rotated = (p: Provider) => {
    setRotating(null);
    setNotice(`The client secret of ${p.name} was replaced: sign-ins through it use the new one, and the old one `
      + "is no longer used.");
    void load();
  };
  const created = (p: Provider) => {
    setNotice(`${p.name} was added. Test it before people sign in with it.`);
    void load();
  };

  return (
    <section>
      <AdminTabs />
      <h1>Identity providers</h1>
      <p className="muted">Members whose email is in a provider's domains sign in through it (OpenID Connect).</p>
      <div className="actions" role="group" aria-label="How to add a provider">
        <button type="button" className={mode === "auto" ? "" : "secondary"} aria-pressed={mode === "auto"}
          onClick={() => setMode("auto")}>Set up automatically</button>
        <button type="button" className={mode === "manual" ? "" : "secondary"} aria-pressed={mode === "manual"}
          onClick={() => setMode("manual")}>Add manually</button>
      </div>
      {mode === "auto" ? <AutoSetup types={types} onCreated={created} /> : <ManualSetup types={types} onCreated={created} />}
      {(error || action.error) && <p className="error" role="alert">{error ?? action.error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {providers === null && !error && <p className="muted" role="status">Loading identity providers…</p>}
      {providers !== null && providers.length === 0 && paging.page === 1 && (
        <p className="empty">No identity providers yet. Give the URL of your provider above to set one up, or add
          one by hand with a client you registered there.</p>
      )}
      {providers !== null && providers.map((p) => (
        <article key={p.id} className="card" aria-label={p.name} data-idp-id={p.id}>
          <div className="title-row">
            <h2>{p.name} <span className={`status status-${p.status}`}>{p.status}</span></h2>
            <div className="row-actions">
              <button type="button" disabled={action.busy} onClick={() => test(p)}>Test connection</button>
              <button type="button" className="secondary" aria-expanded={rotating === p.id}
                onClick={() => setRotating(rotating === p.id ? null : p.id)}>Rotate secret</button>
              {p.status === "active"
                ? <button type="button" className="secondary" disabled={action.busy} onClick={() => setStatus(p, "disabled")}>Disable</button>
                : <button type="button" className="secondary" disabled={action.busy} onClick={() => setStatus(p, "active")}>Enable</button>}
              {confirm === p.id ? (
                <>
                  <button type="button" className="danger" disabled={action.busy} onClick={() => remove(p)}>Yes, delete</button>
                  <button type="button" className="link" onClick={() => setConfirm(null)}>Keep it</button>
                </>
              ) : <button type="button" className="danger" onClick={() => setConfirm(p.id)}>Delete</button>}
            </div>
          </div>
          <dl className="facts">
            <dt>Type</dt><dd>{types.find((t) => t.id === p.providerType)?.name ?? p.providerType}
              {p.autoConfigured && <span className="muted"> (set up automatically)</span>}</dd>
            <dt>Issuer</dt><dd><code>{p.issuer}</code></dd>
            <dt>Client ID</dt><dd><code>{p.clientId}</code></dd>
            <dt>Client secret</dt><dd>{p.hasClientSecret ? "Set (never shown)" : "None (PKCE only)"}
              {p.secretRotatedAt && <span className="muted"> · replaced {when(p.secretRotatedAt)}</span>}</dd>
            <dt>Redirect URI</dt><dd><code>{p.redirectUri}</code> <CopyButton text={p.redirectUri} label="Copy redirect URI" /></dd>
            <dt>Email domains</dt><dd>{p.emailDomains.length
              ? <DomainClaims provider={p} onVerified={() => void load()} />
              : <span className="muted">None</span>}</dd>
            <dt>Last test</dt><dd>{p.lastTestedAt
              ? <>{p.lastTestOk ? "Passed" : "Failed"} <span className="muted">{when(p.lastTestedAt)}</span></>
              : <span className="muted">Never tested</span>}</dd>
          </dl>
          {rotating === p.id && <RotateSecret provider={p} onRotated={rotated} onCancel={() => setRotating(null)} />}
          {tests[p.id] && (
            <div role="region" aria-label={`Test result of ${p.name}`}>
              <p className={tests[p.id].ok ? "ok" : "error"}>{tests[p.id].ok
                ? "The provider answered every check." : "The provider failed a check:"}</p>
              <ul className="checks">
                {tests[p.id].checks.map((c) => (
                  <li key={c.name} className={c.ok ? "ok" : "error"}>{c.ok ? "✓" : "✗"} {c.name}{c.message ? `: ${c.message}` : ""}</li>
                ))}
              </ul>
            </div>
          )}
        </article>
      ))}
      <MarkerPager page={paging.page} nextMarker={nextMarker} onNext={paging.next} onPrevious={paging.previous}
        label="Identity provider pages" />
    </section>
  );
}

/** Each claimed email domain: verified, or the TXT record to publish and a button for the server to check it. */
function DomainClaims({ provider, onVerified }: { provider: Provider; onVerified: () => void }) {
  const { busy, error, run } = useAction();
  const [checking, setChecking] = useState<string | null>(null);
  const [verified, setVerified] = useState<string | null>(null);
  const claims: DomainClaim[] = provider.domainVerifications;

  const verify = (claim: DomainClaim) => {
    setChecking(claim.domain);
    setVerified(null);
    void run(async () => {
      await call(api.POST("/api/v1/auth/idps/{idp}/domains/{domain}/verify", {
        params: { path: { idp: provider.id, domain: claim.domain } } }));
      setVerified(claim.domain);
      onVerified();
    }).finally(() => setChecking(null));
  };

  return (
    <div role="region" aria-label={`Email domains of ${provider.name}`}>
      <ul className="domains">
        {claims.map((c) => (
          <li key={c.domain} aria-label={c.domain}>
            <strong>{c.domain}</strong>{" "}
            {c.status === "verified" ? (
              <span className="status status-active">verified</span>
            ) : (
              <>
                <span className="status status-pending">pending</span>
                <p className="hint">Sign-in goes through this provider once you prove the domain: publish a TXT
                  record <code>{c.recordName}</code> <CopyButton text={c.recordName} label="Copy record name" /> with
                  the value <code>{c.recordValue}</code> <CopyButton text={c.recordValue} label="Copy record value" />,
                  then verify it.</p>
                {c.lastCheckError && (
                  <p className="muted">Last check{c.lastCheckedAt ? ` ${when(c.lastCheckedAt)}` : ""}: {c.lastCheckError}</p>
                )}
                <button type="button" disabled={busy} onClick={() => verify(c)}>
                  {checking === c.domain ? "Checking DNS…" : `Verify ${c.domain}`}</button>
              </>
            )}
          </li>
        ))}
      </ul>
      {verified && <p className="ok" role="status">{verified} is verified: its members sign in through {provider.name}.</p>}
      {error && <p className="error" role="alert">{error}</p>}
    </div>
  );
}

/** A new client secret, typed in by the admin (made at the provider first): the API stores it encrypted, never
 * answers it, and stops using the old one at once. */
function RotateSecret({ provider, onRotated, onCancel }: {
  provider: Provider; onRotated: (p: Provider) => void; onCancel: () => void;
}) {
  const [secret, setSecret] = useState("");
  const { busy, error, fields, run } = useAction();

  async function submit(e: FormEvent) {
    e.preventDefault();
    await run(async () => {
      const p = await call(api.POST("/api/v1/auth/idps/{idp}/rotate-secret", {
        params: { path: { idp: provider.id } }, body: { clientSecret: secret } }));
      setSecret("");
      onRotated(p);
    });
  }

  return (
    <form className="stack panel" onSubmit={submit} aria-label={`Rotate the client secret of ${provider.name}`}
      noValidate>
      <p className="hint">Create a new secret for client <code>{provider.clientId}</code> at the provider, then enter
        it here. Sign-ins use it from then on and the current secret is no longer used; it is never shown again.</p>
      <label>New client secret
        <input name="clientSecret" type="password" autoComplete="off" required autoFocus value={secret}
          onChange={(e) => setSecret(e.target.value)} {...described(fields, "clientSecret")} />
        <FieldError errors={fields} name="clientSecret" />
      </label>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
      <div className="actions">
        <button type="submit" disabled={busy}>{busy ? "Replacing…" : "Replace secret"}</button>
        <button type="button" className="link" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

function AutoSetup({ types, onCreated }: { types: ProviderType[]; onCreated: (p: Provider) => void }) {
  const [name, setName] = useState("");
  const [providerType, setProviderType] = useState("oidc");
  const [providerUrl, setProviderUrl] = useState("");
  const [domains, setDomains] = useState("");
  const [token, setToken] = useState("");
  const { busy, error, fields, run } = useAction();
  const dcr = types.filter((t) => t.capabilities.dcr.supported);

  async function submit(e: FormEvent) {
    e.preventDefault();
    await run(async () => {
      const p = await call(api.POST("/api/v1/auth/idps/auto-setup", { body: {
        name, providerType, providerUrl, emailDomains: list(domains), ...(token ? { initialAccessToken: token } : {}),
      } }));
      setName(""); setProviderUrl(""); setDomains(""); setToken("");
      onCreated(p);
    });
  }

  return (
    <form className="stack panel" onSubmit={submit} aria-label="Set up a provider automatically" noValidate>
      <p className="hint">Sailplane reads the provider's OpenID configuration and registers itself there as a client
        (Dynamic Client Registration). Providers that do not allow it need to be added manually.</p>
      <label>Name<input name="name" required maxLength={255} value={name} onChange={(e) => setName(e.target.value)}
        {...described(fields, "name")} /><FieldError errors={fields} name="name" /></label>
      <label>Provider type
        <select name="providerType" value={providerType} onChange={(e) => setProviderType(e.target.value)}
          {...described(fields, "providerType")}>
          {(dcr.length ? dcr : [{ id: "oidc", name: "OpenID Connect" }]).map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
        </select>
        <FieldError errors={fields} name="providerType" />
      </label>
      <label>Provider URL
        <input name="providerUrl" required placeholder="https://idp.example.com/realms/acme" value={providerUrl}
          onChange={(e) => setProviderUrl(e.target.value)} {...described(fields, "providerUrl")} />
        <span className="hint">The issuer, with http:// or https://.</span>
        <FieldError errors={fields} name="providerUrl" />
      </label>
      <label>Email domains
        <input name="emailDomains" placeholder="example.com, example.org" value={domains}
          onChange={(e) => setDomains(e.target.value)} {...described(fields, "emailDomains")} />
        <FieldError errors={fields} name="emailDomains" />
      </label>
      <label>Initial access token (if the provider asks for one)
        <input name="initialAccessToken" type="password" autoComplete="off" value={token}
          onChange={(e) => setToken(e.target.value)} {...described(fields, "initialAccessToken")} />
        <FieldError errors={fields} name="initialAccessToken" />
      </label>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
      <div className="actions"><button type="submit" disabled={busy}>{busy ? "Setting up…" : "Set up provider"}</button></div>
    </form>
  );
}

function ManualSetup({ types, onCreated }: { types: ProviderType[]; onCreated: (p: Provider) => void }) {
  const [name, setName] = useState("");
  const [providerType, setProviderType] = useState("oidc");
  const [issuer, setIssuer] = useState("");
  const [clientId, setClientId] = useState("");
  const [clientSecret, setClientSecret] = useState("");
  const [scopes, setScopes] = useState("openid email profile");
  const [domains, setDomains] = useState("");
  const { busy, error, fields, run } = useAction();
  const chosen = types.find((t) => t.id === providerType);

  async function submit(e: FormEvent) {
    e.preventDefault();
    await run(async () => {
      const p = await call(api.POST("/api/v1/auth/idps", { body: {
        name, providerType, issuer, clientId, clientSecret: clientSecret || null, scopes: list(scopes),
        emailDomains: list(domains),
      } }));
      setName(""); setIssuer(""); setClientId(""); setClientSecret(""); setDomains("");
      onCreated(p);
    });
  }

  return (
    <form className="stack panel" onSubmit={submit} aria-label="Add a provider manually" noValidate>
      <label>Name<input name="name" required maxLength={255} value={name} onChange={(e) => setName(e.target.value)}
        {...described(fields, "name")} /><FieldError errors={fields} name="name" /></label>
      <label>Provider type
        <select name="providerType" value={providerType} onChange={(e) => {
          setProviderType(e.target.value);
          const t = types.find((x) => x.id === e.target.value);
          if (t?.metadata.defaultIssuer && !issuer) setIssuer(t.metadata.defaultIssuer);
        }} {...described(fields, "providerType")}>
          {(types.length ? types : [{ id: "oidc", name: "OpenID Connect" }]).map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
        </select>
        {chosen && <span className="hint">{chosen.description}</span>}
        <FieldError errors={fields} name="providerType" />
      </label>
      <label>Issuer
        <input name="issuer" required placeholder={chosen?.metadata.issuerTemplate ?? "https://idp.example.com"}
          value={issuer} onChange={(e) => setIssuer(e.target.value)} {...described(fields, "issuer")} />
        <FieldError errors={fields} name="issuer" />
      </label>
      <label>Client ID<input name="clientId" required value={clientId} onChange={(e) => setClientId(e.target.value)}
        {...described(fields, "clientId")} /><FieldError errors={fields} name="clientId" /></label>
      <label>Client secret{chosen && !chosen.capabilities.requiresClientSecret ? " (optional: PKCE without one)" : ""}
        <input name="clientSecret" type="password" autoComplete="off" value={clientSecret}
          onChange={(e) => setClientSecret(e.target.value)} {...described(fields, "clientSecret")} />
        <FieldError errors={fields} name="clientSecret" />
      </label>
      <label>Scopes<input name="scopes" value={scopes} onChange={(e) => setScopes(e.target.value)}
        {...described(fields, "scopes")} /><FieldError errors={fields} name="scopes" /></label>
      <label>Email domains<input name="emailDomains" placeholder="example.com" value={domains}
        onChange={(e) => setDomains(e.target.value)} {...described(fields, "emailDomains")} />
        <FieldError errors={fields} name="emailDomains" /></label>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
      <div className="actions"><button type="submit" disabled={busy}>{busy ? "Adding…" : "Add provider"}</button></div>
    </form>
  );
}
