/** Form helpers shared by the workload forms: the API's field errors (`details.fieldErrors`, keyed by the body's
 * field path) shown beside the field they are about, the rest beside a catch-all field (a JSON editor). */
import type { ReactNode } from "react";
import { ApiFailure } from "./api/client";

export type Fields = Record<string, string>;

/** The API's field errors of a failure, per form field: `paths` maps an API path to the form field showing it;
 * any other path goes to `rest` (prefixed by its path, so the JSON editor's problems say where they are). */
export function mapFieldErrors(err: unknown, paths: Record<string, string>, rest: string): Fields {
  const fields = err instanceof ApiFailure ? err.fields : {};
  const mapped: Fields = {};
  for (const [path, message] of Object.entries(fields)) {
    const at = paths[path] ?? rest;
    const text = at === rest && !(path in paths) ? `${path}: ${message}` : message;
    mapped[at] = mapped[at] ? `${mapped[at]}; ${text}` : text;
  }
  return mapped;
}

/** `fieldError(name)` is the error element beside a field; `described(name)` its input's aria attributes. */
export function fieldHelpers(errors: Fields) {
  const fieldError = (name: string): ReactNode => errors[name]
    ? <span className="field-error" id={`${name}-error`} role="alert">{errors[name]}</span> : null;
  const described = (name: string) => (errors[name] ? { "aria-invalid": true, "aria-describedby": `${name}-error` } : {});
  return { fieldError, described };
}

/** A JSON object typed in a textarea, or the reason it is not one (shown beside the textarea). */
export function parseObject(text: string): { value: Record<string, unknown> } | { problem: string } {
  try {
    const parsed: unknown = JSON.parse(text.trim() || "{}");
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { problem: "Not a JSON object: write { … } with the settings inside." };
    }
    return { value: parsed as Record<string, unknown> };
  } catch (err) {
    return { problem: `Not valid JSON: ${(err as Error).message}` };
  }
}
