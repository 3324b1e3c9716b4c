/** One notebook: its status (polled, closely while starting or stopping), start and stop, and the notebook itself
 * embedded: the `open` operation's single-use URL in an iframe (same origin: the console and the notebook proxy are
 * one server), with the `ping` heartbeat sent while it is shown so the notebook is not stopped as idle. At
 * `/notebook/:id`: every path under `/notebooks/{id}/` is the notebook proxy's. */
import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { CHANGING, OPENABLE, sameOriginUrl, STARTABLE } from "../notebookStates";
import "../workloads.css";

type Notebook = components["schemas"]["NotebookView"];
type Included = components["schemas"]["NotebookIncluded"];
const POLL_CHANGING_MS = 1500;
const POLL_MS = 10_000;
export const PING_MS = 60_000;

export default function NotebookDetail() {
  const { notebookId = "" } = useParams();
  const navigate = useNavigate();
  const [notebook, setNotebook] = useState<Notebook | null>(null);
  const [included, setIncluded] = useState<Included | null>(null);
  const [teamIds, setTeamIds] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [frameUrl, setFrameUrl] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const d = await call(api.GET("/api/v1/workloads/notebooks/{notebook}", {
        params: { path: { notebook: notebookId } },
      }));
      setNotebook(d.included.notebooks.find((n) => n.id === d.item.notebookId) ?? null);
      setIncluded(d.included);
      setTeamIds(d.item.teamIds);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [notebookId]);

  const status = notebook?.status ?? "";
  const changing = CHANGING.has(status);
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), changing ? POLL_CHANGING_MS : POLL_MS);
    return () => window.clearInterval(timer);
  }, [load, changing]);

  // Not openable any more (stopped, by someone or for idleness): the editor goes away.
  const openable = OPENABLE.has(status);
  useEffect(() => { if (notebook && !openable) setFrameUrl(null); }, [notebook, openable]);

  // The heartbeat: while the notebook is shown, tell the API someone has it open (restarts its idle clock).
  const shown = frameUrl !== null;
  useEffect(() => {
    if (!shown) return;
    const ping = () => {
      call(api.POST("/api/v1/workloads/notebooks/{notebook}/ping", { params: { path: { notebook: notebookId } } }))
        .catch(() => {}); // a stopped notebook answers 409: the status poll removes the editor
    };
    ping();
    const timer = window.setInterval(ping, PING_MS);
    return () => window.clearInterval(timer);
  }, [shown, notebookId]);

  async function act(action: "start" | "stop") {
    setBusy(true);
    setError(null);
    try {
      const path = action === "start" ? "/api/v1/workloads/notebooks/{notebook}/start" as const
        : "/api/v1/workloads/notebooks/{notebook}/stop" as const;
      setNotebook(await call(api.POST(path, { params: { path: { notebook: notebookId } } })));
      if (action === "stop") setFrameUrl(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function open() {
    setBusy(true);
    setError(null);
    try {
      const { url } = await call(api.POST("/api/v1/workloads/notebooks/{notebook}/open", {
        params: { path: { notebook: notebookId } },
      }));
      setFrameUrl(sameOriginUrl(url, window.location.origin));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!notebook || !window.confirm(`Delete the notebook ${notebook.name} and its source?`)) return;
    setBusy(true);
    try {
      await call(api.DELETE("/api/v1/workloads/notebooks/{notebook}", { params: { path: { notebook: notebookId } } }));
      navigate("/notebooks");
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  }

  const config = included?.workloadConfigs.find((c) => c.id === notebook?.workloadConfigId);
  const teamName = (id: string) => included?.teams.find((t) => t.team.id === id)?.team.name ?? id;

  return (
    <section className={shown ? "notebook-open" : undefined}>
      <p><Link to="/notebooks">← Notebooks</Link></p>
      {error && <p className="error" role="alert">{error}</p>}
      {notebook === null && !error && <p className="muted" role="status">Loading notebook…</p>}
      {notebook && (
        <>
          <h1>{notebook.name}</h1>
          <dl className="facts">
            <dt>Status</dt>
            <dd><span className={`status nb-status status-${notebook.status}`} data-testid="notebook-status"
              aria-live="polite">{notebook.status}</span>
              {changing && <span className="muted" role="status"> (updates live)</span>}</dd>
            {notebook.statusMessage && <><dt>Message</dt><dd>{notebook.statusMessage}</dd></>}
            {notebook.description && <><dt>Description</dt><dd>{notebook.description}</dd></>}
            <dt>Workload config</dt><dd>{config?.name ?? notebook.workloadConfigId}</dd>
            <dt>Shared with</dt><dd>{teamIds.length ? teamIds.map(teamName).join(", ") : "Only the owner"}</dd>
            <dt>Stops when idle</dt>
            <dd>after {Math.round(notebook.idleTimeoutSeconds / 60)} min without activity, or
              {" "}{Math.round(notebook.detachedTimeoutSeconds / 60)} min with no browser on it</dd>
            {notebook.lastActiveAt && <><dt>Last active</dt><dd>{new Date(notebook.lastActiveAt).toLocaleString()}</dd></>}
          </dl>
          <div className="actions">
            {STARTABLE.has(notebook.status) && (
              <button type="button" onClick={() => void act("start")} disabled={busy}>Start</button>
            )}
            {openable && !shown && <button type="button" onClick={() => void open()} disabled={busy}>Open notebook</button>}
            {shown && <button type="button" onClick={() => setFrameUrl(null)}>Hide notebook</button>}
            {(openable || notebook.status === "starting") && (
              <button type="button" className="danger" onClick={() => void act("stop")} disabled={busy}>Stop</button>
            )}
            {STARTABLE.has(notebook.status) && (
              <button type="button" className="danger" onClick={() => void remove()} disabled={busy}>Delete</button>
            )}
          </div>
          {notebook.status === "starting" && (
            <p className="muted" role="status">Starting its Spark session and notebook server: this takes a moment.</p>
          )}
          {STARTABLE.has(notebook.status) && !error && (
            <p className="empty">The notebook is stopped. Start it to open it here; it stops by itself when unused.</p>
          )}
          {frameUrl && (
            <iframe className="notebook-frame" title={`Notebook ${notebook.name}`} src={frameUrl} />
          )}
        </>
      )}
    </section>
  );
}
