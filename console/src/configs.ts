/** Workload configs as the console's forms handle them: the API's view (`config.sail`) split into the form's
 * common fields and the rest, for the JSON editor. */
import type { components } from "./api/schema";

type Config = components["schemas"]["WorkloadConfigView"];

/** The Sail part of a config's body (the view's type is open: it is whatever the API answered). */
export function sailOf(config: Config): Record<string, unknown> {
  const body = config.config as { sail?: Record<string, unknown> } | null;
  return body?.sail ?? {};
}

export const SPARK_VERSIONS = ["4.2", "4.1", "4.0", "3.5"] as const;
/** The form's fields, by the API's field path; any other path is about the JSON editor. */
export const CONFIG_FORM_FIELDS: Record<string, string> = {
  name: "name", teamId: "teamId", clusterId: "clusterId", "config.sail.executionMode": "executionMode",
  "config.sail.sparkVersion": "sparkVersion",
};

/** What the JSON editor starts with for a copy of `config`: its Sail settings other than the form's, and its
 * endpoint limits. Secret values of `extraEnv` are not in the view: they must be typed again. */
export function extraOf(config: Config | null): Record<string, unknown> {
  if (!config) return { sail: { libraries: [], extraEnv: {} }, endpointLimits: null };
  const { executionMode: _mode, sparkVersion: _version, ...sail } = sailOf(config);
  const kept = Object.fromEntries(Object.entries(sail).filter(([, v]) => v !== null));
  return { sail: kept, endpointLimits: config.endpointLimits ?? null };
}

/** The createWorkloadConfig body from the form's fields and the JSON editor's object. */
export function configBody(fields: { name: string; teamId: string; clusterId: string; executionMode: string;
  sparkVersion: string }, extra: Record<string, unknown>): Record<string, unknown> {
  const sail = { ...((extra.sail as Record<string, unknown> | undefined) ?? {}), executionMode: fields.executionMode,
    ...(fields.sparkVersion ? { sparkVersion: fields.sparkVersion } : {}) };
  const { sail: _sail, ...rest } = extra;
  return { ...rest, name: fields.name, teamId: fields.teamId, clusterId: fields.clusterId || null,
    workloadType: "sail", config: { sail } };
}
