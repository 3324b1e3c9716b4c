/** Small pieces the organization-admin pages share: the API's field errors beside fields, a pager like the
 * API's page+limit lists, and running a call with its progress and its error in plain words. */
import { useCallback, useState } from "react";
import { ApiFailure } from "../api/client";

export type FieldErrors = Record<string, string>;

/** The API's problem with one field, shown under it and announced; `name` is the body's field path. */
export function FieldError({ errors, name }: { errors: FieldErrors; name: string }) {
  return errors[name] ? <span className="field-error" id={`${name}-error`} role="alert">{errors[name]}</span> : null;
}

/** Marks a field invalid and points it at its error, for screen readers. */
export function described(errors: FieldErrors, name: string) {
  return errors[name] ? { "aria-invalid": true, "aria-describedby": `${name}-error` } : {};
}

/** Run one API call: busy while it runs; its failure as the message (unless the API named the fields, which
 * are then shown beside them) plus the per-field errors. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<FieldErrors>({});
  const run = useCallback(async (action: () => Promise<void>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setFields({});
    try {
      await action();
      return true;
    } catch (err) {
      const perField = err instanceof ApiFailure ? err.fields : {};
      setFields(perField);
      setError((err as Error).message);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  const clear = useCallback(() => { setError(null); setFields({}); }, []);
  return { busy, error, fields, run, clear };
}

/** Previous/next over a page+limit list of `total` items. */
export function Pager({ page, total, pageSize, onPage, label = "Pages" }: {
  page: number; total: number; pageSize: number; onPage: (page: number) => void; label?: string;
}) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  if (pages <= 1) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>Previous</button>
      <span>Page {page} of {pages}</span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>Next</button>
    </nav>
  );
}

export function when(timestamp: string | null | undefined): string {
  return timestamp ? new Date(timestamp).toLocaleString() : "—";
}

/** Paging a limit+marker list like the API: each page's marker is kept, so Previous goes back exactly. */
export function useMarkerPaging() {
  const [markers, setMarkers] = useState<(string | undefined)[]>([undefined]);
  const [index, setIndex] = useState(0);
  const next = useCallback((marker: string) => {
    setMarkers((m) => [...m.slice(0, index + 1), marker]);
    setIndex(index + 1);
  }, [index]);
  const previous = useCallback(() => setIndex((i) => Math.max(0, i - 1)), []);
  const reset = useCallback(() => { setMarkers([undefined]); setIndex(0); }, []);
  return { marker: markers[index], page: index + 1, next, previous, reset };
}

/** Previous/next for a marker list: `nextMarker` is the list's `marker` (null on its last page). */
export function MarkerPager({ page, nextMarker, onNext, onPrevious, label = "Pages" }: {
  page: number; nextMarker: string | null | undefined; onNext: (marker: string) => void; onPrevious: () => void;
  label?: string;
}) {
  if (page <= 1 && !nextMarker) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" disabled={page <= 1} onClick={onPrevious}>Previous</button>
      <span>Page {page}</span>
      <button type="button" disabled={!nextMarker} onClick={() => nextMarker && onNext(nextMarker)}>Next</button>
    </nav>
  );
}

/** A copy-to-clipboard button that says when it worked (or that the browser refused). */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  return (
    <button type="button" onClick={() => {
      navigator.clipboard.writeText(text).then(() => setState("copied"), () => setState("failed"));
    }}>
      {state === "copied" ? "Copied" : state === "failed" ? "Copy failed: select and copy it" : label}
    </button>
  );
}
