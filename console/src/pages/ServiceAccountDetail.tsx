/** One service account: its API keys (never their secrets; a new key's secret is shown once, with a copy button),
 * creating a key with an optional lifetime, revoking one, and deleting the account (its keys stop at once). */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { CopyButton, described, FieldError, MarkerPager, useAction, useMarkerPaging, when } from "../admin/ui";
import { AdminTabs } from "../admin/nav";

type ServiceAccount = components["schemas"]["ServiceAccountView"];
type ApiKey = components["schemas"]["ApiKeyView"];
type CreatedKey = components["schemas"]["CreatedApiKey"];
const PAGE_SIZE = 25;
const DAY = 86400;

export default function ServiceAccountDetail() {
  const { serviceAccountId = "" } = useParams();
  const navigate = useNavigate();
  const paging = useMarkerPaging();
  const [account, setAccount] = useState<ServiceAccount | null>(null);
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [nextMarker, setNextMarker] = useState<string | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [confirm, setConfirm] = useState<string | null>(null);  // a key's ID, or "account"
  const [notice, setNotice] = useState<string | null>(null);
  const action = useAction();
  const path = { serviceAccount: serviceAccountId };

  useEffect(() => {
    call(api.GET("/api/v1/org/service-accounts/{serviceAccount}", { params: { path } }))
      .then(setAccount, (e: Error) => setLoadError(e.message));
  }, [serviceAccountId]); // eslint-disable-line react-hooks/exhaustive-deps

  const loadKeys = useCallback(async () => {
    try {
      const list = await call(api.GET("/api/v1/org/service-accounts/{serviceAccount}/api-keys", {
        params: { path: { serviceAccount: serviceAccountId },
          query: { limit: PAGE_SIZE, ...(paging.marker ? { marker: paging.marker } : {}) } },
      }));
      setKeys(list.items);
      setNextMarker(list.marker ?? null);
    } catch (e) {
      setLoadError((e as Error).message);
    }
  }, [serviceAccountId, paging.marker]);
  useEffect(() => { void loadKeys(); }, [loadKeys]);

  const revoke = (key: ApiKey) => void action.run(async () => {
    await call(api.DELETE("/api/v1/org/service-accounts/{serviceAccount}/api-keys/{apiKey}", {
      params: { path: { serviceAccount: serviceAccountId, apiKey: key.id } },
    }));
    setConfirm(null);
    if (created?.id === key.id) setCreated(null);
    setNotice(`The key “${key.name}” was revoked: programs using it are refused from now on.`);
    await loadKeys();
  });
  const remove = () => void action.run(async () => {
    await call(api.DELETE("/api/v1/org/service-accounts/{serviceAccount}", { params: { path } }));
    navigate("/service-accounts", { replace: true });
  });

  if (loadError && !account) {
    return <section><p><Link to="/service-accounts">← Service accounts</Link></p>
      <p className="error" role="alert">{loadError}</p></section>;
  }
  if (!account) return <p className="muted" role="status">Loading service account…</p>;
  return (
    <section>
      <AdminTabs />
      <p><Link to="/service-accounts">← Service accounts</Link></p>
      <div className="title-row">
        <h1>{account.name}</h1>
        {confirm === "account" ? (
          <div className="row-actions">
            <span>Delete {account.name}? Its keys stop working at once.</span>
            <button type="button" className="danger" disabled={action.busy} onClick={remove}>Yes, delete</button>
            <button type="button" className="link" onClick={() => setConfirm(null)}>Keep it</button>
          </div>
        ) : (
          <button type="button" className="danger" onClick={() => setConfirm("account")}>Delete service account</button>
        )}
      </div>
      {account.description && <p>{account.description}</p>}
      <dl className="facts">
        <dt>ID</dt><dd><code>{account.id}</code></dd>
        <dt>Created</dt><dd>{when(account.createdAt)}</dd>
      </dl>
      <p className="muted">What it may do is what its <Link to="/policies">policy</Link> grants, by its ID.</p>

      <h2>API keys</h2>
      <CreateKey serviceAccountId={serviceAccountId} onCreated={(key) => {
        setCreated(key);
        setNotice(null);
        void loadKeys();
      }} />
      {created && (
        <div className="secret" role="region" aria-label="New API key">
          <p><strong>Copy the key “{created.name}” now: it is shown only once.</strong> Use it as a bearer token
            (<code>Authorization: Bearer …</code>).</p>
          <code data-testid="api-key-secret">{created.secret}</code>
          <CopyButton text={created.secret} label="Copy key" />
          <button type="button" className="link" onClick={() => setCreated(null)}>I have copied it</button>
        </div>
      )}
      {action.error && <p className="error" role="alert">{action.error}</p>}
      {notice && <p className="ok" role="status">{notice}</p>}
      {keys !== null && keys.length === 0 && paging.page === 1 && (
        <p className="empty">No API keys yet. Create one above for a program to sign in as {account.name}.</p>
      )}
      {keys !== null && keys.length > 0 && (
        <table aria-label="API keys">
          <thead><tr><th>Name</th><th>Starts with</th><th>Status</th><th>Expires</th><th>Last used</th><th></th></tr></thead>
          <tbody>
            {keys.map((key) => (
              <tr key={key.id} data-key-id={key.id}>
                <td>{key.name}</td>
                <td><code>{key.prefix}…</code></td>
                <td><span className={`status status-${key.status}`}>{key.status}</span></td>
                <td>{key.expiresAt ? when(key.expiresAt) : "Never"}</td>
                <td>{key.lastUsedAt ? when(key.lastUsedAt) : "Never"}</td>
                <td className="row-actions">
                  {key.status === "active" && (confirm === key.id ? (
                    <>
                      <button type="button" className="danger" disabled={action.busy} onClick={() => revoke(key)}>Yes, revoke</button>
                      <button type="button" className="link" onClick={() => setConfirm(null)}>Keep it</button>
                    </>
                  ) : (
                    <button type="button" className="danger" onClick={() => setConfirm(key.id)}>Revoke</button>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <MarkerPager page={paging.page} nextMarker={nextMarker} onNext={paging.next} onPrevious={paging.previous}
        label="API key pages" />
    </section>
  );
}

function CreateKey({ serviceAccountId, onCreated }: { serviceAccountId: string; onCreated: (key: CreatedKey) => void }) {
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const { busy, error, fields, run } = useAction();

  async function submit(e: FormEvent) {
    e.preventDefault();
    const lifetime = days.trim() ? Number(days) * DAY : null;
    await run(async () => {
      const key = await call(api.POST("/api/v1/org/service-accounts/{serviceAccount}/api-keys", {
        params: { path: { serviceAccount: serviceAccountId } },
        body: { name, ...(lifetime !== null ? { expiresInSeconds: lifetime } : {}) },
      }));
      setName("");
      setDays("");
      onCreated(key);
    });
  }

  return (
    <form className="inline" onSubmit={submit} aria-label="Create API key" noValidate>
      <label>Key name
        <input name="name" required maxLength={255} value={name} onChange={(e) => setName(e.target.value)}
          {...described(fields, "name")} />
        <FieldError errors={fields} name="name" />
      </label>
      <label>Expires after (days)
        <input name="days" type="number" min={1} step={1} placeholder="Never" value={days}
          onChange={(e) => setDays(e.target.value)} {...described(fields, "expiresInSeconds")} />
        <FieldError errors={fields} name="expiresInSeconds" />
      </label>
      <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create API key"}</button>
      {error && Object.keys(fields).length === 0 && <p className="error" role="alert">{error}</p>}
    </form>
  );
}
