/**
 * An RFC 3339 date-time that names a real instant, or undefined. Date() rolls 2026-02-30 over
 * to March and accepts "yesterday"-like forms on some engines; the calendar fields must
 * survive the round trip.
 */
export function parseRfc3339(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  const d = new Date(text);
  if (!m || Number.isNaN(d.getTime())) return undefined;
  const [y, mo, da, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const cal = new Date(Date.UTC(y, mo - 1, da));
  if (cal.getUTCFullYear() !== y || cal.getUTCMonth() !== mo - 1 || cal.getUTCDate() !== da || h > 23 || mi > 59 || se > 59) return undefined;
  return d;
}
