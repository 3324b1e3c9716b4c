/** Notification channels the caller sees (the organization's, their teams' and their own, oldest first): a form to
 * add one (type, owner, the type's settings as JSON; secrets are write-only), a test message per channel with its
 * outcome, and delete. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { fieldHelpers, mapFieldErrors, parseObject, type Fields } from "../fields";
import { NotificationsNav } from "../notificationsNav";
import "../workloads.css";

type Channel = components["schemas"]["ChannelView"];
type Delivery = components["schemas"]["DeliveryView"];
type TeamItem = components["schemas"]["TeamItem"];
type ChannelType = components["schemas"]["CreateChannelRequest"]["type"];
const TYPES: { value: ChannelType; label: string; example: Record<string, unknown> }[] = [
  { value: "webhook", label: "Webhook", example: { url: "https://hooks.example.com/sailplane", signingSecret: "" } },
  { value: "email", label: "Email", example: {} },
  { value: "slack", label: "Slack", example: { webhookUrl: "https://hooks.slack.com/services/…", channel: "#alerts" } },
  { value: "pager_duty", label: "PagerDuty", example: { routingKey: "", severity: "error" } },
  { value: "rootly", label: "Rootly", example: { apiToken: "", severity: "high" } },
];
const FORM_FIELDS: Record<string, string> = { name: "name", type: "type", teamId: "owner", memberId: "owner" };

export default function NotificationChannels() {
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [memberId, setMemberId] = useState<string | null>(null);
  const [tests, setTests] = useState<Record<string, Delivery | string>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setChannels((await call(api.GET("/api/v1/notifications/channels", { params: { query: { limit: 100 } } }))).items);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);
  useEffect(() => {
    void load();
    call(api.GET("/api/v1/me")).then((me) => setMemberId(me.memberId), () => {});
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => setTeams(list.items), () => {});
  }, [load]);

  async function test(channel: Channel) {
    setBusy(channel.id);
    try {
      const delivery = await call(api.POST("/api/v1/notifications/channels/{channel}/test", {
        params: { path: { channel: channel.id } },
      }));
      setTests((t) => ({ ...t, [channel.id]: delivery }));
      await load();
    } catch (e) {
      setTests((t) => ({ ...t, [channel.id]: (e as Error).message }));
    } finally {
      setBusy(null);
    }
  }

  async function remove(channel: Channel) {
    if (!window.confirm(`Delete the channel ${channel.name}? Rules stop sending to it.`)) return;
    setBusy(channel.id);
    try {
      await call(api.DELETE("/api/v1/notifications/channels/{channel}", { params: { path: { channel: channel.id } } }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(null);
    }
  }

  const owner = (c: Channel) => c.memberId ? (c.memberId === memberId ? "Me" : "A member")
    : c.teamId ? `Team ${teams.find((t) => t.team.id === c.teamId)?.team.name ?? c.teamId}` : "Organization";
  return (
    <section>
      <h1>Notifications</h1>
      <NotificationsNav />
      <CreateChannel teams={teams} memberId={memberId} onCreated={() => void load()} />
      {error && <p className="error" role="alert">{error}</p>}
      {channels === null && !error && <p className="muted" role="status">Loading channels…</p>}
      {channels !== null && channels.length === 0 && (
        <p className="empty">No channels yet. Add one above (a webhook, email, Slack, PagerDuty or Rootly), then
          <Link to="/notifications/rules"> a rule</Link> saying which events go to it.</p>
      )}
      {channels !== null && channels.length > 0 && (
        <table aria-label="Channels">
          <thead><tr><th>Name</th><th>Type</th><th>Owner</th><th>Verified</th><th>Test</th><th></th></tr></thead>
          <tbody>
            {channels.map((c) => {
              const result = tests[c.id];
              return (
                <tr key={c.id}>
                  <td>{c.name}<br /><small className="muted">{summary(c)}</small></td>
                  <td>{c.type}</td>
                  <td>{owner(c)}</td>
                  <td>{c.verifiedAt ? new Date(c.verifiedAt).toLocaleString() : <span className="muted">Not yet</span>}</td>
                  <td>
                    <button type="button" onClick={() => void test(c)} disabled={busy === c.id}>
                      {busy === c.id ? "Sending…" : "Send test"}</button>
                    {result && (typeof result === "string"
                      ? <span className="error" role="alert"> {result}</span>
                      : <span role="status"> <span className={`status status-${result.status}`}>{result.status}</span>
                        {result.responseCode ? ` (HTTP ${result.responseCode})` : ""}
                        {result.lastError ? `: ${result.lastError}` : ""}</span>)}
                  </td>
                  <td><button type="button" className="danger" onClick={() => void remove(c)} disabled={busy === c.id}>
                    Delete</button></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** A channel's public settings in a few words (secrets are never in the view: `…Set` says one is stored). */
function summary(c: Channel): string {
  const config = (c.config ?? {}) as Record<string, unknown>;
  return Object.entries(config).filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => (typeof v === "boolean" ? `${k}: ${v ? "yes" : "no"}` : `${k}: ${String(v)}`)).join(" · ");
}

function CreateChannel({ teams, memberId, onCreated }: {
  teams: TeamItem[]; memberId: string | null; onCreated: () => void;
}) {
  const [name, setName] = useState("");
  const [type, setType] = useState<ChannelType>("webhook");
  const [owner, setOwner] = useState("organization");
  const [config, setConfig] = useState(JSON.stringify(TYPES[0].example, null, 2));
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { fieldError, described } = fieldHelpers(errors);

  function chooseType(value: ChannelType) {
    setType(value);
    setConfig(JSON.stringify(TYPES.find((t) => t.value === value)?.example ?? {}, null, 2));
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setError(null);
    const parsed = parseObject(config);
    if ("problem" in parsed) {
      setErrors({ config: parsed.problem });
      return;
    }
    // Empty strings in the example are settings not given.
    const settings = Object.fromEntries(Object.entries(parsed.value).filter(([, v]) => v !== "" && v !== null));
    const scope = owner === "me" && memberId ? { memberId } : owner.startsWith("team:") ? { teamId: owner.slice(5) } : {};
    setBusy(true);
    try {
      await call(api.POST("/api/v1/notifications/channels", { body: { name, type, config: settings, ...scope } }));
      setName("");
      chooseType(type); // the settings typed (secrets too) do not stay in the page
      onCreated();
    } catch (err) {
      setErrors(mapFieldErrors(err, FORM_FIELDS, "config"));
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="stack" onSubmit={submit} aria-label="Add channel" noValidate>
      <h2>Add a channel</h2>
      <label>Channel name
        <input name="name" maxLength={255} value={name} onChange={(e) => setName(e.target.value)} {...described("name")} />
        {fieldError("name")}
      </label>
      <label>Type
        <select name="type" value={type} onChange={(e) => chooseType(e.target.value as ChannelType)} {...described("type")}>
          {TYPES.map((t) => <option key={t.value} value={t.value}>{t.label}</option>)}
        </select>
        {fieldError("type")}
      </label>
      <label>Belongs to
        <select name="owner" value={owner} onChange={(e) => setOwner(e.target.value)} {...described("owner")}>
          <option value="organization">The organization</option>
          {memberId && <option value="me">Me</option>}
          {teams.map(({ team }) => <option key={team.id} value={`team:${team.id}`}>Team {team.name}</option>)}
        </select>
        {fieldError("owner")}
      </label>
      <label>Settings (JSON)
        <textarea name="config" rows={5} value={config} spellCheck={false} onChange={(e) => setConfig(e.target.value)}
          {...described("config")} />
        <span className="hint">Webhook: url, signingSecret; email: memberId or teamId (default: the channel's member);
          Slack: webhookUrl, channel; PagerDuty: routingKey; Rootly: apiToken. Secrets are never shown again.</span>
        {fieldError("config")}
      </label>
      {error && Object.keys(errors).length === 0 && <p className="error" role="alert">{error}</p>}
      <div className="actions"><button type="submit" disabled={busy}>{busy ? "Adding…" : "Add channel"}</button></div>
    </form>
  );
}
