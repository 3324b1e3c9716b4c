/** Register a catalog, or change one: name, description, provider (fixed once created) and teams as fields, the
 * provider's settings as JSON. Secrets are write-only: the API names the ones set (`configuredSecrets`) and keeps
 * any left out of an update (its providerConfig is merged). The catalog's page shares it with teams (teamSharing)
 * and lists the saved queries using it. */
import { useEffect, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import type { components } from "../api/schema";
import { parseObject, useFormActions } from "../fields";
import { TeamPicker } from "../teamPicker";
import { CATALOG_SHARING, TeamSharing, useTeamChoice } from "../teamSharing";
import "../workloads.css";

type Catalog = components["schemas"]["CatalogView"];
type Query = components["schemas"]["QueryView"];
type Provider = components["schemas"]["CreateCatalogRequest"]["provider"];
const PROVIDERS: { value: Provider; label: string; example: Record<string, unknown> }[] = [
  { value: "iceberg_rest", label: "Iceberg REST", example: { uri: "https://catalog.example.com", warehouse: null } },
  { value: "unity", label: "Unity Catalog", example: { uri: "https://unity.example.com", token: null } },
  { value: "glue", label: "AWS Glue", example: { region: "us-east-1" } },
  { value: "onelake", label: "OneLake", example: { url: "workspace/item.Lakehouse" } },
  { value: "local", label: "Local warehouse", example: { warehouseDir: "/data/warehouse" } },
];
const FORM_FIELDS: Record<string, string> = { name: "name", description: "description", provider: "provider",
  teamIds: "teamIds" };

const withoutNulls = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));

export default function CatalogForm() {
  const { catalogId } = useParams();
  const editing = Boolean(catalogId);
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [queries, setQueries] = useState<Query[] | null>(null);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [provider, setProvider] = useState<Provider>("iceberg_rest");
  const [settings, setSettings] = useState(JSON.stringify(PROVIDERS[0].example, null, 2));
  const { error, setError, busy, save, remove, fail, feedback, fieldError, described } =
    useFormActions(FORM_FIELDS, "providerConfig");
  const { teams, teamIds, setTeamIds } = useTeamChoice(!editing, setError);

  useEffect(() => {
    if (!catalogId) return;
    call(api.GET("/api/v1/data/catalogs/{catalog}", { params: { path: { catalog: catalogId } } })).then((d) => {
      const c = d.included.catalogs.find((x) => x.id === catalogId);
      if (!c) return;
      setCatalog(c);
      setName(c.name);
      setDescription(c.description ?? "");
      setProvider(c.provider as Provider);
      setSettings(JSON.stringify(c.providerConfig, null, 2));
    }, (e: Error) => setError(e.message));
    call(api.GET("/api/v1/data/catalogs/{catalog}/queries", { params: { path: { catalog: catalogId } } }))
      .then((list) => {
        const byId = new Map(list.included.queries.map((q) => [q.id, q]));
        setQueries(list.items.flatMap((ref) => byId.get(ref.queryId) ?? []));
      }, () => setQueries([]));
  }, [catalogId, setError]);

  function chooseProvider(value: Provider) {
    setProvider(value);
    const example = PROVIDERS.find((p) => p.value === value)?.example ?? {};
    setSettings(JSON.stringify(example, null, 2));
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    const parsed = parseObject(settings);
    if ("problem" in parsed) {
      fail({ providerConfig: parsed.problem });
      return;
    }
    const providerConfig = withoutNulls(parsed.value) as Record<string, components["schemas"]["JsonValue"]>;
    void save(async () => {
      if (!catalogId) {
        const created = await call(api.POST("/api/v1/data/catalogs", {
          body: { name, description: description || null, provider, providerConfig, teamIds },
        }));
        return `/catalogs/${created.id}`;
      }
      const updated = await call(api.PATCH("/api/v1/data/catalogs/{catalog}", {
        params: { path: { catalog: catalogId } }, body: { name, description: description || null, providerConfig },
      }));
      setCatalog(updated);
      setSettings(JSON.stringify(updated.providerConfig, null, 2)); // a secret typed does not stay in the page
    });
  }

  const onDelete = () => catalogId && void remove(
    `Delete the catalog ${catalog?.name ?? ""}? Queries using it keep existing without a catalog.`,
    () => call(api.DELETE("/api/v1/data/catalogs/{catalog}", { params: { path: { catalog: catalogId } } })), "/catalogs");

  if (editing && !catalog && !error) return <p className="muted" role="status">Loading catalog…</p>;
  return (
    <section>
      <p><Link to="/catalogs">← Catalogs</Link></p>
      <h1>{editing ? catalog?.name ?? "Catalog" : "New catalog"}</h1>
      <form className="stack" onSubmit={submit} aria-label={editing ? "Edit catalog" : "Create catalog"} noValidate>
        <label>Name
          <input name="name" maxLength={255} value={name} onChange={(e) => setName(e.target.value)} {...described("name")} />
          {fieldError("name")}
        </label>
        <label>Description
          <input name="description" maxLength={2000} value={description} onChange={(e) => setDescription(e.target.value)}
            {...described("description")} />
          {fieldError("description")}
        </label>
        <label>Provider
          <select name="provider" value={provider} disabled={editing} onChange={(e) => chooseProvider(e.target.value as Provider)}
            {...described("provider")}>
            {PROVIDERS.map((p) => <option key={p.value} value={p.value}>{p.label}</option>)}
          </select>
          {fieldError("provider")}
        </label>
        {!editing && <TeamPicker teams={teams} selected={teamIds} onChange={setTeamIds} error={fieldError("teamIds")} />}
        <label>Provider settings (JSON)
          <textarea name="providerConfig" rows={8} value={settings} spellCheck={false}
            onChange={(e) => setSettings(e.target.value)} {...described("providerConfig")} />
          <span className="hint">{catalog?.configuredSecrets.length
            ? `Secrets set: ${catalog.configuredSecrets.join(", ")} (never shown; leave them out to keep them).`
            : "Secrets (tokens) are write-only: they are stored encrypted and never shown again."}</span>
          {fieldError("providerConfig")}
        </label>
        {feedback}
        <div className="actions">
          <button type="submit" disabled={busy}>{busy ? "Saving…" : editing ? "Save catalog" : "Create catalog"}</button>
          {editing && <button type="button" className="danger" onClick={onDelete} disabled={busy}>Delete catalog</button>}
        </div>
      </form>
      {catalogId && (
        <>
          {catalog && <TeamSharing sharing={CATALOG_SHARING} id={catalogId} what="catalog" />}
          <h2>Saved queries using it</h2>
          {queries === null ? <p className="muted" role="status">Loading…</p> : queries.length === 0
            ? <p className="empty">No saved query uses this catalog. <Link to={`/queries/new?catalog=${catalogId}`}>Save one</Link>.</p>
            : <ul>{queries.map((q) => <li key={q.id}><Link to={`/queries/${q.id}`}>{q.name}</Link></li>)}</ul>}
        </>
      )}
    </section>
  );
}
