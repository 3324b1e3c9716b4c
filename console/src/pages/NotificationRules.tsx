/** Notification rules: which event types go to which channels, for a scope (the organization, a team, or the
 * caller's own resources). Add one (event types and channels as checkboxes; shortcut types are expanded by the
 * API), enable or disable it, delete it. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { fieldHelpers, mapFieldErrors, type Fields } from "../fields";
import { NotificationsNav } from "../notificationsNav";
import "../workloads.css";

type Rule = components["schemas"]["RuleView"];
type Channel = components["schemas"]["ChannelView"];
type EventType = components["schemas"]["EventTypeView"];
type TeamItem = components["schemas"]["TeamItem"];
type ScopeType = components["schemas"]["CreateRuleRequest"]["scopeType"];
const FORM_FIELDS: Record<string, string> = { name: "name", eventTypes: "eventTypes", channelIds: "channelIds",
  scopeType: "scope", teamId: "scope", resourceId: "scope", description: "description" };

export default function NotificationRules() {
  const [rules, setRules] = useState<Rule[] | null>(null);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [eventTypes, setEventTypes] = useState<EventType[]>([]);
  const [teams, setTeams] = useState<TeamItem[]>([]);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setRules((await call(api.GET("/api/v1/notifications/rules", { params: { query: { limit: 100 } } }))).items);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);
  useEffect(() => {
    void load();
    call(api.GET("/api/v1/notifications/channels", { params: { query: { limit: 100 } } }))
      .then((list) => setChannels(list.items), () => {});
    call(api.GET("/api/v1/notifications/event-types")).then((list) => setEventTypes(list.items), () => {});
    call(api.GET("/api/v1/org/teams", { params: { query: { limit: 100, sortBy: "name" } } }))
      .then((list) => setTeams(list.items), () => {});
  }, [load]);

  async function toggle(rule: Rule) {
    setBusy(rule.id);
    try {
      await call(api.PATCH("/api/v1/notifications/rules/{rule}", {
        params: { path: { rule: rule.id } }, body: { enabled: !rule.enabled },
      }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(null);
    }
  }

  async function remove(rule: Rule) {
    if (!window.confirm(`Delete the rule ${rule.name}?`)) return;
    setBusy(rule.id);
    try {
      await call(api.DELETE("/api/v1/notifications/rules/{rule}", { params: { path: { rule: rule.id } } }));
      await load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(null);
    }
  }

  const label = (key: string) => eventTypes.find((t) => t.key === key)?.label ?? key;
  const channelName = (id: string) => channels.find((c) => c.id === id)?.name ?? id;
  const scope = (r: Rule) => r.scopeType === "team"
    ? `Team ${teams.find((t) => t.team.id === r.teamId)?.team.name ?? r.teamId}`
    : r.scopeType === "own_resources" ? "My resources" : r.scopeType === "organization" ? "Organization"
      : `${r.resourceType} ${r.resourceId ?? ""}`;
  return (
    <section>
      <h1>Notifications</h1>
      <NotificationsNav />
      <CreateRule channels={channels} eventTypes={eventTypes} teams={teams} onCreated={() => void load()} />
      {error && <p className="error" role="alert">{error}</p>}
      {rules === null && !error && <p className="muted" role="status">Loading rules…</p>}
      {rules !== null && rules.length === 0 && (
        <p className="empty">No rules yet: nothing is sent. Add one above to send events to your channels.</p>
      )}
      {rules !== null && rules.length > 0 && (
        <table aria-label="Rules">
          <thead><tr><th>Name</th><th>Scope</th><th>Events</th><th>Channels</th><th>State</th><th></th></tr></thead>
          <tbody>
            {rules.map((r) => (
              <tr key={r.id}>
                <td>{r.name}</td>
                <td>{scope(r)}</td>
                <td>{r.eventTypes.map(label).join(", ")}</td>
                <td>{r.channelIds.map(channelName).join(", ") || <span className="muted">None</span>}</td>
                <td><span className={`status status-${r.enabled ? "enabled" : "disabled"}`}>
                  {r.enabled ? "enabled" : "disabled"}</span></td>
                <td><div className="actions">
                  <button type="button" onClick={() => void toggle(r)} disabled={busy === r.id}>
                    {r.enabled ? "Disable" : "Enable"}</button>
                  <button type="button" className="danger" onClick={() => void remove(r)} disabled={busy === r.id}>
                    Delete</button>
                </div></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CreateRule({ channels, eventTypes, teams, onCreated }: {
  channels: Channel[]; eventTypes: EventType[]; teams: TeamItem[]; onCreated: () => void;
}) {
  const [name, setName] = useState("");
  const [scope, setScope] = useState("organization");
  const [events, setEvents] = useState<string[]>([]);
  const [targets, setTargets] = useState<string[]>([]);
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { fieldError, described } = fieldHelpers(errors);
  const flip = (list: string[], id: string, on: boolean) => (on ? [...list, id] : list.filter((x) => x !== id));

  async function submit(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setError(null);
    const scopeFields: { scopeType: ScopeType; teamId?: string } = scope.startsWith("team:")
      ? { scopeType: "team", teamId: scope.slice(5) } : { scopeType: scope as ScopeType };
    setBusy(true);
    try {
      await call(api.POST("/api/v1/notifications/rules", {
        body: { name, eventTypes: events, channelIds: targets, enabled: true, ...scopeFields },
      }));
      setName("");
      setEvents([]);
      setTargets([]);
      onCreated();
    } catch (err) {
      setErrors(mapFieldErrors(err, FORM_FIELDS, "form"));
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="stack" onSubmit={submit} aria-label="Add rule" noValidate>
      <h2>Add a rule</h2>
      <label>Rule name
        <input name="name" maxLength={255} value={name} onChange={(e) => setName(e.target.value)} {...described("name")} />
        {fieldError("name")}
      </label>
      <label>For
        <select name="scope" value={scope} onChange={(e) => setScope(e.target.value)} {...described("scope")}>
          <option value="organization">The whole organization</option>
          <option value="own_resources">My own resources</option>
          {teams.map(({ team }) => <option key={team.id} value={`team:${team.id}`}>Team {team.name}</option>)}
        </select>
        {fieldError("scope")}
      </label>
      <fieldset aria-describedby={errors.eventTypes ? "eventTypes-error" : undefined}>
        <legend>Events</legend>
        {eventTypes.map((t) => (
          <label key={t.key} title={t.description}><input type="checkbox" name="eventTypes" value={t.key}
            checked={events.includes(t.key)} onChange={(e) => setEvents(flip(events, t.key, e.target.checked))} />
            {" "}{t.label}</label>
        ))}
        {fieldError("eventTypes")}
      </fieldset>
      <fieldset aria-describedby={errors.channelIds ? "channelIds-error" : undefined}>
        <legend>Send to</legend>
        {channels.length === 0 && <span className="muted">No channels yet: add one on the Channels tab.</span>}
        {channels.map((c) => (
          <label key={c.id}><input type="checkbox" name="channelIds" value={c.id} checked={targets.includes(c.id)}
            onChange={(e) => setTargets(flip(targets, c.id, e.target.checked))} /> {c.name}</label>
        ))}
        {fieldError("channelIds")}
      </fieldset>
      {error && (Object.keys(errors).length === 0 || errors.form) && <p className="error" role="alert">{error}</p>}
      <div className="actions"><button type="submit" disabled={busy}>{busy ? "Adding…" : "Add rule"}</button></div>
    </form>
  );
}
