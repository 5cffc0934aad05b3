// Demo charts that never go stale: a Bundle tagged date-relative is dated as of its
// `timestamp` (the anchor day), and every date in it moves by the same number of days so that
// the anchor becomes the day the server loads it. Ages, intervals and "within 90 days" windows
// stay as they were built; only the calendar moves. Bundles without the tag load unchanged.

export const DATE_RELATIVE = { system: 'urn:mecasermin-cds:CodeSystem:demo-data', code: 'date-relative' };

const DAY_MS = 24 * 60 * 60 * 1000;
// FHIR date, dateTime and instant values: a day, optionally a time with its offset (kept as is).
const FULL_DATE = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/;
// Partial dates (a year, a month) move with their first day and keep their precision.
const PARTIAL_DATE = /^(\d{4})(?:-(\d{2}))?$/;

export function isDateRelative(bundle) {
  return (bundle?.meta?.tag ?? []).some((t) => t?.system === DATE_RELATIVE.system && t?.code === DATE_RELATIVE.code);
}

// "YYYY-MM-DD" of a local calendar day (the machine's clock, as the CDS service's is).
export function localDay(date = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function parseDay(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text ?? '');
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : NaN;
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== text) {
    throw new Error(`not a calendar day (YYYY-MM-DD): ${text}`);
  }
  return ms;
}

// Days from the Bundle's anchor (the day part of Bundle.timestamp) to `today` ("YYYY-MM-DD").
export function shiftDays(bundle, today) {
  const anchor = String(bundle.timestamp ?? '').slice(0, 10);
  let anchorMs;
  try {
    anchorMs = parseDay(anchor);
  } catch {
    throw new Error('a date-relative Bundle needs a timestamp (its anchor day)');
  }
  return Math.round((parseDay(today) - anchorMs) / DAY_MS);
}

function moveDay(year, month, day, days) {
  return new Date(Date.UTC(year, month - 1, day) + days * DAY_MS).toISOString().slice(0, 10);
}

export function shiftValue(text, days) {
  const full = FULL_DATE.exec(text);
  if (full) {
    return moveDay(Number(full[1]), Number(full[2]), Number(full[3]), days) + (full[4] ?? '');
  }
  const partial = PARTIAL_DATE.exec(text);
  if (partial) {
    const moved = moveDay(Number(partial[1]), Number(partial[2] ?? 1), 1, days);
    return partial[2] ? moved.slice(0, 7) : moved.slice(0, 4);
  }
  return text;
}

// Every date-valued string of the Bundle, resources included, moved by `days`. Ids and
// references are never dates; a partial-date pattern is recognised only under a date-like key
// (a year alone is also what a string such as a version looks like).
export function shiftBundle(bundle, days) {
  const walk = (value, key) => {
    if (Array.isArray(value)) return value.map((item) => walk(item, key));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    }
    if (typeof value !== 'string' || key === 'id' || key === 'reference' || key === 'url') return value;
    if (FULL_DATE.test(value)) return shiftValue(value, days);
    if (PARTIAL_DATE.test(value) && /(date|time|start|end|issued|authoredOn|recorded)/i.test(key)) {
      return shiftValue(value, days);
    }
    return value;
  };
  return days === 0 ? bundle : walk(bundle, undefined);
}
