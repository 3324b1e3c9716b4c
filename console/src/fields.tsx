/** Form helpers shared by the workload forms: the API's field errors (`details.fieldErrors`, keyed by the body's
 * field path) shown beside the field they are about, the rest beside a catch-all field (a JSON editor). */
import { useState, type ReactNode } from "react";
import { useNavigate } from "react-router";
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

/** The state of a create-or-edit form with a delete button (the catalog and saved query pages): field errors, the
 * API's message, busy, saved. `save` runs a create (returning the page to go to) or an update ("Saved." shows);
 * `remove` asks first, deletes, then goes to `to`; `fail` shows problems found before sending. The API's paths
 * map to fields as in `mapFieldErrors`, `rest` taking the others: `"form"` (no field of its own) shows them with
 * the message above the buttons (`feedback`), which otherwise shows only a message no field does. */
export function useFormActions(paths: Record<string, string>, rest: string) {
  const navigate = useNavigate();
  const [errors, setErrors] = useState<Fields>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);

  function fail(fields: Fields) {
    setErrors(fields);
    setError(null);
    setSaved(false);
  }

  async function save(action: () => Promise<string | void>) {
    fail({});
    setBusy(true);
    try {
      const next = await action();
      if (next) navigate(next);
      else setSaved(true);
    } catch (err) {
      setErrors(mapFieldErrors(err, paths, rest));
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function remove(question: string, action: () => Promise<unknown>, to: string) {
    if (!window.confirm(question)) return;
    setBusy(true);
    setError(null);
    try {
      await action();
      navigate(to);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  const shown = error && (Object.keys(errors).length === 0 || errors.form);
  const feedback = <>
    {shown && <p className="error" role="alert">{error}</p>}
    {saved && <p className="muted" role="status">Saved.</p>}
  </>;
  return { error, setError, busy, save, remove, fail, feedback, ...fieldHelpers(errors) };
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
