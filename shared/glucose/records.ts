// Dexcom's egvs records turned into rows of public.glucose_readings, and the one statement that
// stores a batch of them. Dexcom's data are messy in practice (see the reference's "Data"
// section): times without seconds or with odd offsets, null values, enum values nobody
// documented. The rule is to keep whatever can be kept: a batch is never rejected for one odd
// record, an odd field becomes null, and only a record that cannot be placed at all (no identity,
// no time) is left out and counted.
import type { Queryable } from "../db/database.ts";
import { parseDexcomTime } from "../dexcom/iso-time.ts";

/**
 * One reading as dms.store_glucose_readings takes it: an object with the table's column names
 * (migration 20261129000003_glucose_history). Every field but the first two may be null.
 */
export interface ReadingRow {
  /** Dexcom's `recordId` as sent (1..255 characters): the reading's identity for its user. */
  record_id: string;
  /** Dexcom's `systemTime` as an instant, ISO 8601 in UTC with milliseconds ("...T12:00:00.000Z"). */
  system_time: string;
  /** Dexcom's `displayTime` exactly as sent (any offset, seconds or not); null when not a string. */
  display_time: string | null;
  /** The value in `unit` as sent (mg/dL usually, mmol/L in some countries); null when absent or absurd. */
  value: number | null;
  /** `mg/dL`, `mmol/L`, `unknown` or whatever else Dexcom sent. */
  unit: string | null;
  /** `ok`, `low`, `high`, `unknown` or another value as sent. */
  status: string | null;
  /** `flat`, `singleUp`, ... or another value as sent. */
  trend: string | null;
  /** The rate of change in `rate_unit` (mg/dL/min usually). */
  trend_rate: number | null;
  rate_unit: string | null;
  /** `iOS`, `android`, `receiver`, ... as sent. */
  display_device: string | null;
  /** `g6`, `g7`, `g715day`, `g6 pro`, ... as sent. */
  transmitter_generation: string | null;
  transmitter_id: string | null;
  /** The transmitter's clock in seconds since its start (an integer). */
  transmitter_ticks: number | null;
}

/** Longer strings are not something Dexcom sends; they are stored as null rather than kept. */
const MAX_TEXT = 255;
/** Values outside this range (in either unit) are garbage, not readings; stored as null. */
const MIN_VALUE = -1000;
const MAX_VALUE = 100_000;

/**
 * Dexcom's egvs `records` as rows for dms.store_glucose_readings.
 *
 * - Each record must be an object with a `recordId` (a string of 1..255 characters) and a
 *   readable `systemTime`; anything else (a number, null, an array, a record without either) is
 *   left out and counted in `skipped`. The rest of the batch is kept.
 * - `systemTime`: ISO 8601 with a time of day; no offset means UTC; seconds may be missing; an
 *   offset (`Z`, `+01:00`, `+0100`, `+01`, even `+01:00:00` with seconds) is applied. Stored as
 *   the instant in UTC. Years outside 0001..9999 (after the offset) are not readable.
 * - `displayTime` is kept exactly as sent when it is a string, else null.
 * - `value`: a finite number within -1000..100000, else null (Dexcom sends null for low/high).
 * - Strings (`unit`, `status`, `trend`, `rateUnit`, `displayDevice`, `transmitterGeneration`,
 *   `transmitterId`) are kept as sent, unknown enum values included; not a string, or longer
 *   than 255 characters: null.
 * - `trendRate`: a finite number, else null. `transmitterTicks`: a safe integer, else null.
 * - Text Postgres cannot hold (U+0000, or an unpaired surrogate, which JSON.stringify writes as
 *   an escape that jsonb refuses) would fail the whole batch's statement: such a field is null,
 *   and such a recordId makes the record skipped.
 * - The same `recordId` twice in one batch: the last one wins (one upsert statement cannot touch
 *   a row twice); the earlier ones are superseded, not counted as skipped.
 * - Fields not named here are ignored. `records` that is not an array gives no rows, 0 skipped.
 */
export function readingRows(records: unknown): { rows: ReadingRow[]; skipped: number } {
  if (!Array.isArray(records)) return { rows: [], skipped: 0 };
  const byId = new Map<string, ReadingRow>();
  let skipped = 0;
  for (const record of records) {
    const row = readingRow(record);
    if (row === null) {
      skipped++;
      continue;
    }
    // Deleting first puts the winning record where it last appeared.
    byId.delete(row.record_id);
    byId.set(row.record_id, row);
  }
  return { rows: [...byId.values()], skipped };
}

function readingRow(record: unknown): ReadingRow | null {
  if (typeof record !== "object" || record === null || Array.isArray(record)) return null;
  const field = (name: string): unknown => (Object.hasOwn(record, name) ? (record as Record<string, unknown>)[name] : undefined);

  const recordId = text(field("recordId"));
  if (recordId === null || recordId.length === 0) return null;
  const systemTime = field("systemTime");
  const at = typeof systemTime === "string" ? parseDexcomTime(systemTime) : null;
  if (at === null) return null;

  const value = field("value");
  const trendRate = field("trendRate");
  const ticks = field("transmitterTicks");
  return {
    record_id: recordId,
    system_time: at.toISOString(),
    display_time: storable(field("displayTime")),
    value: typeof value === "number" && Number.isFinite(value) && value >= MIN_VALUE && value <= MAX_VALUE ? value : null,
    unit: text(field("unit")),
    status: text(field("status")),
    trend: text(field("trend")),
    trend_rate: typeof trendRate === "number" && Number.isFinite(trendRate) ? trendRate : null,
    rate_unit: text(field("rateUnit")),
    display_device: text(field("displayDevice")),
    transmitter_generation: text(field("transmitterGeneration")),
    transmitter_id: text(field("transmitterId")),
    transmitter_ticks: typeof ticks === "number" && Number.isSafeInteger(ticks) ? ticks : null,
  };
}

/** A string as sent, when Postgres can store it and it is not absurdly long; else null. */
function text(value: unknown): string | null {
  const kept = storable(value);
  return kept !== null && kept.length <= MAX_TEXT ? kept : null;
}

// U+0000, or a surrogate without its pair (in "u" mode a proper pair is one code point, not \p{Cs}).
const UNSTORABLE = /[\u0000\p{Cs}]/u;

/** A string Postgres's text and jsonb can hold: no U+0000, no unpaired surrogate. */
function storable(value: unknown): string | null {
  if (typeof value !== "string") return null;
  return UNSTORABLE.test(value) ? null : value;
}

/**
 * Stores one batch in one statement (dms.store_glucose_readings: an upsert on (user_id,
 * record_id), then the user's sync state's newest_reading_at moved on). `newReadings` counts the
 * rows inserted, not the ones updated; `newestReadingAt` is the newest reading the user has now
 * (null when there is none). The rows must come from readingRows (no duplicate record_id).
 */
export async function storeReadings(
  db: Queryable,
  userId: number,
  rows: ReadingRow[],
): Promise<{ newReadings: number; newestReadingAt: Date | null }> {
  // The JSON goes as text: postgres.js would encode a string given for a jsonb parameter once more.
  const [result] = await db.query<{ new_readings: number | null; newest_reading_at: Date | string | null }>(
    "SELECT new_readings, newest_reading_at FROM dms.store_glucose_readings($1, $2::text::jsonb)",
    [userId, JSON.stringify(rows)],
  );
  const newest = result?.newest_reading_at ?? null;
  return {
    newReadings: result?.new_readings ?? 0,
    newestReadingAt: newest === null ? null : newest instanceof Date ? newest : new Date(newest),
  };
}
