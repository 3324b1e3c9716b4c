/** Deliveries to the channels the caller sees, newest first (the API's order), filtered by status like the API:
 * what was sent, to which channel, whether it got through (attempts, response code, last error). */
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { NotificationsNav } from "../notificationsNav";
import "../workloads.css";

type Delivery = components["schemas"]["DeliveryView"];
type Status = "pending" | "delivering" | "delivered" | "failed" | "skipped";
const STATUSES: Status[] = ["pending", "delivering", "delivered", "failed", "skipped"];

export default function NotificationDeliveries() {
  const [params, setParams] = useSearchParams();
  const status = (STATUSES as string[]).includes(params.get("status") ?? "") ? params.get("status") as Status : null;
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [total, setTotal] = useState(0);
  const [channels, setChannels] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(api.GET("/api/v1/notifications/channels", { params: { query: { limit: 100 } } }))
      .then((list) => setChannels(Object.fromEntries(list.items.map((c) => [c.id, c.name]))), () => {});
  }, []);
  useEffect(() => {
    setDeliveries(null);
    call(api.GET("/api/v1/notifications/deliveries", {
      params: { query: { limit: 100, ...(status ? { status } : {}) } },
    })).then((list) => {
      setDeliveries(list.items);
      setTotal(list.total);
    }, (e: Error) => setError(e.message));
  }, [status]);

  return (
    <section>
      <h1>Notifications</h1>
      <NotificationsNav />
      <label className="filter">Status
        <select value={status ?? ""} onChange={(e) => setParams(e.target.value ? { status: e.target.value } : {})}>
          <option value="">All</option>
          {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      {deliveries === null && !error && <p className="muted" role="status">Loading deliveries…</p>}
      {deliveries !== null && deliveries.length === 0 && (
        <p className="empty">No deliveries{status ? ` with status ${status}` : ""}. Send a test from the Channels tab,
          or wait for an event a rule sends.</p>
      )}
      {deliveries !== null && deliveries.length > 0 && (
        <table aria-label="Deliveries">
          <thead><tr><th>When</th><th>Event</th><th>Channel</th><th>Status</th><th>Attempts</th><th>Response</th></tr></thead>
          <tbody>
            {deliveries.map((d) => (
              <tr key={d.id}>
                <td>{new Date(d.createdAt).toLocaleString()}</td>
                <td>{d.eventType}<br /><small className="muted">{d.resourceType}{d.resourceId ? ` ${d.resourceId}` : ""}</small></td>
                <td>{channels[d.channelId] ?? d.channelId}</td>
                <td><span className={`status status-${d.status}`}>{d.status}</span></td>
                <td>{d.attempts}</td>
                <td>{d.responseCode ? `HTTP ${d.responseCode}` : ""}{d.lastError
                  ? <><br /><small className="error">{d.lastError}</small></> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deliveries !== null && total > deliveries.length && (
        <p className="muted">Showing the newest {deliveries.length} of {total} deliveries.</p>
      )}
    </section>
  );
}
