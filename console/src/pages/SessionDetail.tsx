/** One session: its status (polled while it can still change), a PySpark snippet with a fresh token, close. */
import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { FINAL_STATES, gatewayTls, pysparkSnippet } from "../snippet";

type Session = components["schemas"]["SessionView"];
const POLL_MS = 2000;

export default function SessionDetail() {
  const { sessionId = "" } = useParams();
  const navigate = useNavigate();
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [snippet, setSnippet] = useState<string | null>(null);
  const [expiresAt, setExpiresAt] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setSession(await call(api.GET("/api/v1/workloads/sessions/{session}", { params: { path: { session: sessionId } } })));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [sessionId]);

  const final = session !== null && FINAL_STATES.has(session.status);
  useEffect(() => {
    void load();
    if (final) return;
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => window.clearInterval(timer);
  }, [load, final]);

  async function connect() {
    setBusy(true);
    setError(null);
    setCopied(false);
    try {
      const token = await call(api.POST("/api/v1/workloads/sessions/{session}/token", {
        params: { path: { session: sessionId } }, body: {},
      }));
      const endpoint = session?.connectionInfo?.grpcEndpoint;
      if (!endpoint) throw new Error("This session has no Spark Connect endpoint yet.");
      setSnippet(pysparkSnippet(endpoint, token.token, gatewayTls()));
      setExpiresAt(token.expiresAt);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function copy() {
    if (!snippet) return;
    try {
      await navigator.clipboard.writeText(snippet);
      setCopied(true);
    } catch {
      setError("Copying was refused by the browser: select the snippet and copy it by hand.");
    }
  }

  async function close() {
    if (!window.confirm("Close this session? Connected clients will be disconnected.")) return;
    setBusy(true);
    try {
      await call(api.DELETE("/api/v1/workloads/sessions/{session}", { params: { path: { session: sessionId } } }));
      setSnippet(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function relaunch() {
    setBusy(true);
    setError(null);
    try {
      const next = await call(api.POST("/api/v1/workloads/sessions/{session}/relaunch", {
        params: { path: { session: sessionId } },
      }));
      setSnippet(null);
      setSession(null);
      navigate(`/sessions/${next.id}`);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section>
      <p><Link to="/sessions">← Sessions</Link></p>
      {error && <p className="error" role="alert">{error}</p>}
      {session === null && !error && <p className="muted" role="status">Loading session…</p>}
      {session && (
        <>
          <h1>{session.name}</h1>
          <dl className="facts">
            <dt>Status</dt>
            <dd><span className={`status status-${session.status}`} data-testid="session-status"
              aria-live="polite">{session.status}</span>
              {!final && <span className="muted"> (updates live)</span>}</dd>
            {session.statusMessage && <><dt>Message</dt><dd>{session.statusMessage}</dd></>}
            {session.terminationReason && <><dt>Ended because</dt><dd>{session.terminationReason}</dd></>}
            <dt>Endpoint</dt><dd><code>{session.connectionInfo?.grpcEndpoint ?? "—"}</code></dd>
            <dt>Created</dt><dd>{new Date(session.createdAt).toLocaleString()}</dd>
            {session.lastActivityAt && <><dt>Last activity</dt><dd>{new Date(session.lastActivityAt).toLocaleString()}</dd></>}
          </dl>
          {!final && (
            <div className="actions">
              <button type="button" onClick={() => void connect()} disabled={busy}>
                {snippet ? "New token" : "Connect with PySpark"}
              </button>
              <button type="button" className="danger" onClick={() => void close()} disabled={busy}>Close session</button>
            </div>
          )}
          {final && (
            <div className="actions">
              <button type="button" onClick={() => void relaunch()} disabled={busy}>Relaunch</button>
              <span className="muted">A new session with the same configuration.</span>
            </div>
          )}
          {snippet && !final && (
            <div className="snippet">
              <p>Run this with PySpark (the token is valid until {expiresAt ? new Date(expiresAt).toLocaleString() : "it expires"};
                it is shown only here):</p>
              <pre data-testid="snippet"><code>{snippet}</code></pre>
              <button type="button" onClick={() => void copy()}>{copied ? "Copied" : "Copy snippet"}</button>
            </div>
          )}
        </>
      )}
    </section>
  );
}
