/** UTC days as the archive names them ('YYYY-MM-DD'): pure helpers. */

export const DAY_MS = 86_400_000;
const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A day string, or undefined when `s` is not a real calendar date in YYYY-MM-DD form. */
export function parseDay(s: string): string | undefined {
  const m = DAY_RE.exec(s);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(ms) || dayOf(ms) !== s ? undefined : s;
}

/** The UTC day containing `ms`. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Start of `day` (inclusive), ms since the epoch. */
export function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** End of `day` (exclusive): the start of the next day. */
export function dayEnd(day: string): number {
  return dayStart(day) + DAY_MS;
}

export function nextDay(day: string): string {
  return dayOf(dayEnd(day));
}

/** Every day from `from` to `to`, both included (empty when from > to). */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = dayStart(from); d <= dayStart(to); d += DAY_MS) out.push(dayOf(d));
  return out;
}
