// Date-times exchanged with Dexcom's data API. Parsing is strict on purpose: Date.parse accepts
// many non-ISO shapes and rolls impossible dates over (Feb 30 -> Mar 2), which would silently
// move a query window instead of rejecting bad input.

// One anchored pattern: date, then optionally time (minutes required, seconds optional, fraction
// only after seconds), then optionally an offset. Groups:
// 1 year, 2 month, 3 day, 4 hour, 5 minute, 6 second, 7 fraction, 8 "Z", 9 sign, 10 off-hours, 11 off-minutes.
const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses an ISO 8601 / RFC 3339 date-time as an instant; null when it is not one.
 *
 * Accepted: `YYYY-MM-DD` (midnight UTC), or `YYYY-MM-DD` + `T`/`t`/space + `HH:mm` or `HH:mm:ss`
 * with an optional fraction of 1-9 digits (milliseconds kept, finer digits truncated), then
 * optionally `Z`/`z`, `±HH:mm`, `±HHmm` or `±HH` (up to ±23:59). No offset means UTC.
 * Years 0001-9999, real calendar dates, hours 00-23, minutes and seconds 00-59.
 * Never throws: any other text (including surrounding whitespace) gives null.
 */
export function parseInstant(text: string): Date | null {
  if (typeof text !== "string") return null;
  const m = ISO_INSTANT.exec(text);
  if (!m) return null;

  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4] ?? 0);
  const minute = Number(m[5] ?? 0);
  const second = Number(m[6] ?? 0);
  const millis = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);

  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  if (offsetHours > 23 || offsetMinutes > 59) return null;

  // setUTCFullYear rather than Date.UTC, which would read years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, millis);
  const offset = (m[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  // Local time = UTC + offset, so the instant is the wall time minus the offset.
  return new Date(date.getTime() - offset * 60_000);
}

/**
 * A Date as Dexcom's data API wants it: UTC, "YYYY-MM-DDTHH:mm:ss" (no offset, no fraction).
 * Milliseconds are dropped (truncated, not rounded).
 * Throws RangeError for an invalid Date or a UTC year outside 0000-9999, which
 * toISOString would write with a sign and six digits.
 */
export function dexcomTime(date: Date): string {
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 0 || year > 9999) {
    throw new RangeError(`dexcomTime: date out of range: ${String(date)}`);
  }
  return date.toISOString().slice(0, 19);
}

// An offset with seconds (+01:00:00, seen in Dexcom's data), which parseInstant does not take.
const OFFSET_WITH_SECONDS = /([+-])(\d{2}):?(\d{2}):(\d{2})$/;
// A time of day must be there: a bare date would put a reading at midnight.
const HAS_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}/;

/**
 * A time as Dexcom's data carry it (systemTime, dataRange bounds), read leniently: no offset means
 * UTC, seconds may be missing, an offset may carry seconds (+01:00:00). A time of day is required
 * and the year must be 0001-9999; otherwise null.
 */
export function parseDexcomTime(raw: string): Date | null {
  const textTime = raw.trim();
  if (textTime.length > 64 || !HAS_TIME.test(textTime)) return null;
  let at: Date | null;
  const offset = OFFSET_WITH_SECONDS.exec(textTime);
  if (offset) {
    const seconds = Number(offset[4]);
    if (seconds > 59) return null;
    // Parse with the offset's hours and minutes, then take its seconds off as well.
    at = parseInstant(`${textTime.slice(0, offset.index)}${offset[1]}${offset[2]}:${offset[3]}`);
    if (at !== null) at = new Date(at.getTime() - (offset[1] === "-" ? -1 : 1) * seconds * 1000);
  } else {
    at = parseInstant(textTime);
  }
  if (at === null) return null;
  const year = at.getUTCFullYear();
  return year >= 1 && year <= 9999 ? at : null;
}
