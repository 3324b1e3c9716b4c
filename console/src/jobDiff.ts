/** What differs between two job versions (or a draft and the live version), as people read a diff: each version's
 * settings as stable, pretty-printed JSON (keys sorted, nulls and bookkeeping such as timestamps left out), compared
 * line by line (longest common subsequence), unchanged lines kept for context. */

export type DiffLine = { kind: "same" | "added" | "removed"; text: string };

/** What a version sets (shared by describeJobVersion's JobView and the draft's JobVersionView); the rest is about
 * the record (its number, timestamps, authors), not what the job does. */
export const SETTINGS = ["description", "clusterId", "cronExpression", "cronTimezone", "timeoutSeconds",
  "concurrencyPolicy", "maxConcurrentRuns", "missedSchedulePolicy", "dependsOn", "sourceConfig", "config"] as const;

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value as Record<string, unknown>).sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== null)
      .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** A version's settings as lines of JSON, the same settings always giving the same lines. */
export function settingsText(version: object): string[] {
  const all = version as Record<string, unknown>;
  const kept = Object.fromEntries(SETTINGS.filter((k) => k in all).map((k) => [k, all[k]]));
  return JSON.stringify(sortedKeys(kept), null, 2).split("\n");
}

/** The line diff turning `before` into `after`. */
export function lineDiff(before: string[], after: string[]): DiffLine[] {
  const n = before.length, m = after.length;
  // lcs[i][j]: the longest common subsequence of before[i:] and after[j:].
  const lcs = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = before[i] === after[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: DiffLine[] = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (before[i] === after[j]) { out.push({ kind: "same", text: before[i] }); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ kind: "removed", text: before[i++] });
    else out.push({ kind: "added", text: after[j++] });
  }
  while (i < n) out.push({ kind: "removed", text: before[i++] });
  while (j < m) out.push({ kind: "added", text: after[j++] });
  return out;
}
