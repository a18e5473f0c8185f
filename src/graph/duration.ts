/**
 * ISO 8601 durations as LVA uses them (`PT1S`, `-PT5S`, `PT0.5S`, `PT1M30S`, `PT5M`), converted to
 * milliseconds. Years and months are rejected: their length depends on the calendar, and no LVA
 * property needs them. Weeks and days are accepted as fixed 7×24 h / 24 h. Designators must be
 * upper case, as ISO 8601 writes them; a fraction is allowed only on the last component present.
 */

export class DurationSyntaxError extends Error {
  constructor(readonly text: string, reason: string) {
    super(`'${text.length > 64 ? `${text.slice(0, 64)}…` : text}' is not a valid ISO 8601 duration: ${reason}`);
    this.name = 'DurationSyntaxError';
  }
}

const UNIT_MS = { W: 604_800_000, D: 86_400_000, H: 3_600_000, M: 60_000, S: 1000 } as const;

// Sign, date part (weeks, days), time part (hours, minutes, seconds); every number may carry a fraction.
const DURATION = /^(-)?P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Parses an ISO 8601 duration into (possibly negative, possibly fractional) milliseconds. */
export function parseDuration(text: string): number {
  if (typeof text !== 'string') throw new DurationSyntaxError(String(text), 'not a string');
  const m = DURATION.exec(text);
  if (!m) {
    if (/^-?P(\d+(\.\d+)?[YM])/.test(text)) {
      throw new DurationSyntaxError(text, 'years and months have no fixed length; use weeks, days or a time part');
    }
    throw new DurationSyntaxError(text, 'expected a form like PT30S, PT1M30S, PT0.5S or -PT5S');
  }
  const parts: Array<[string | undefined, number]> = [
    [m[2], UNIT_MS.W],
    [m[3], UNIT_MS.D],
    [m[4], UNIT_MS.H],
    [m[5], UNIT_MS.M],
    [m[6], UNIT_MS.S],
  ];
  const present = parts.filter(([v]) => v !== undefined);
  if (present.length === 0) throw new DurationSyntaxError(text, 'no components');
  if (text.endsWith('T')) throw new DurationSyntaxError(text, "a 'T' must be followed by hours, minutes or seconds");
  present.slice(0, -1).forEach(([v]) => {
    if (v!.includes('.')) throw new DurationSyntaxError(text, 'only the last component may have a fraction');
  });
  let ms = 0;
  for (const [v, unit] of present) ms += Number(v) * unit;
  // Round away binary noise such as 0.1 * 1000 = 100.00000000000001 while keeping sub-ms precision.
  ms = Math.round(ms * 1000) / 1000;
  if (!Number.isFinite(ms)) throw new DurationSyntaxError(text, 'value out of range');
  return m[1] && ms !== 0 ? -ms : ms;
}

/** Like parseDuration, but returns undefined instead of throwing. */
export function tryParseDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/** Formats milliseconds as a canonical ISO 8601 duration (`PT1M30S`, `-PT0.5S`, `PT0S`). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format ${ms} as a duration`);
  const sign = ms < 0 ? '-' : '';
  let rest = Math.abs(ms);
  const hours = Math.floor(rest / UNIT_MS.H);
  rest -= hours * UNIT_MS.H;
  const minutes = Math.floor(rest / UNIT_MS.M);
  rest -= minutes * UNIT_MS.M;
  const seconds = Math.round(rest) / 1000;
  let out = `${sign}PT`;
  if (hours) out += `${hours}H`;
  if (minutes) out += `${minutes}M`;
  if (seconds || (!hours && !minutes)) out += `${seconds}S`;
  return out;
}
