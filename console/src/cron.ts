/** A cron expression in plain words, for the job form's preview (the API validates it; this only explains it). */

const MACROS: Record<string, string> = {
  "@yearly": "Once a year, at midnight on January 1",
  "@annually": "Once a year, at midnight on January 1",
  "@monthly": "Once a month, at midnight on the 1st",
  "@weekly": "Once a week, at midnight on Sunday",
  "@daily": "Every day at midnight",
  "@midnight": "Every day at midnight",
  "@hourly": "Every hour, on the hour",
};
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
  "November", "December"];
const MONTH_NAMES = MONTHS.map((m) => m.slice(0, 3).toLowerCase());

const pad = (n: number) => String(n).padStart(2, "0");
const isNumber = (s: string) => /^\d+$/.test(s);

/** One field's values in words ("5", "1-5", "*\/15", "1,3"), or null when it is not a cron field. */
function listWords(field: string, names: string[] | null, offset: number, label: (n: number) => string): string | null {
  const parts = field.split(",");
  const words: string[] = [];
  for (const part of parts) {
    const value = (s: string): number | null => {
      if (isNumber(s)) return Number(s);
      const i = names ? names.indexOf(s.toLowerCase()) : -1;
      return i >= 0 ? i + offset : null;
    };
    const [range, step] = part.split("/");
    if (step !== undefined && !isNumber(step)) return null;
    if (range === "*") {
      words.push(step ? `every ${step}` : "every");
      continue;
    }
    const [from, to] = range.split("-");
    const a = value(from);
    if (a === null) return null;
    if (to !== undefined) {
      const b = value(to);
      if (b === null) return null;
      words.push(`${label(a)} to ${label(b)}${step ? ` every ${step}` : ""}`);
    } else {
      words.push(label(a) + (step ? ` every ${step}` : ""));
    }
  }
  return words.join(", ");
}

/** Plain words for a five-field cron expression or a macro; null when it does not look like one. */
export function describeCron(expression: string): string | null {
  const text = expression.trim();
  if (!text) return null;
  if (text.startsWith("@")) return MACROS[text.toLowerCase()] ?? null;
  const fields = text.split(/\s+/);
  if (fields.length !== 5) return null;
  const [minute, hour, dom, month, dow] = fields;
  if (![minute, hour, dom, month, dow].every((f) => /^[\w*,/-]+$/.test(f))) return null;

  let time: string;
  if (isNumber(minute) && isNumber(hour)) {
    time = `at ${pad(Number(hour))}:${pad(Number(minute))}`;
  } else if (minute === "*" && hour === "*") {
    time = "every minute";
  } else if (/^\*\/\d+$/.test(minute) && hour === "*") {
    time = `every ${minute.slice(2)} minutes`;
  } else if (isNumber(minute) && hour === "*") {
    time = Number(minute) === 0 ? "every hour, on the hour" : `every hour at ${Number(minute)} minutes past`;
  } else {
    const m = listWords(minute, null, 0, String);
    const h = listWords(hour, null, 0, (n) => pad(n));
    if (m === null || h === null) return null;
    time = `at minute ${m} of hour ${h}`;
  }

  const days: string[] = [];
  if (dom !== "*") {
    const d = listWords(dom, null, 0, String);
    if (d === null) return null;
    days.push(`on day ${d} of the month`);
  }
  if (dow !== "*") {
    const w = listWords(dow, DAY_NAMES, 0, (n) => DAYS[n] ?? String(n));
    if (w === null) return null;
    days.push(`on ${w}`);
  }
  let months = "";
  if (month !== "*") {
    const mo = listWords(month, MONTH_NAMES, 1, (n) => MONTHS[n - 1] ?? String(n));
    if (mo === null) return null;
    months = ` in ${mo}`;
  }
  const when = days.length ? days.join(" or ") : "every day";
  const sentence = `${time.startsWith("every") ? time : `${when} ${time}`}${
    time.startsWith("every") && days.length ? `, ${when}` : ""}${months}`;
  return sentence.charAt(0).toUpperCase() + sentence.slice(1);
}

/** Runs in these states change no more: pages stop following them. */
export const FINAL_RUN_STATES = new Set(["succeeded", "failed", "timeout", "cancelled"]);
/** Runs in these states can be retried (the API's retryJobRun). */
export const RETRYABLE_RUN_STATES = new Set(["failed", "timeout", "cancelled"]);
