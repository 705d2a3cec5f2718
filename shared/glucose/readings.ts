// GET /glucose-readings in one round trip: the caller, their sync state and the readings of a
// window, the readings already written as JSON by Postgres. A 14-day window holds ~4,000
// readings; building them into objects here only to serialise them again would be most of the
// request's work.
import type { Queryable } from "../db/database.ts";
import type { Window } from "./window.ts";

export interface GlucoseReadings {
  userId: number;
  /** Old rows may hold NULL; only an explicit false deactivates. */
  isActive: boolean;
  /** The last sync that finished, ISO 8601 UTC; null when never synced. */
  syncedAt: string | null;
  /** The newest reading stored for the user (any window), ISO 8601 UTC; null when none. */
  newestReadingAt: string | null;
  /**
   * The window's readings as a JSON array (text), oldest first (system_time, then record_id):
   * `[{"id", "time", "display_time", "value_mg_dl", "status", "trend", "trend_rate", "unit",
   * "display_device", "transmitter_generation"}, ...]`. "[]" for an inactive caller (not read).
   */
  readingsJson: string;
}

// ISO 8601 in UTC with milliseconds, as JavaScript's toISOString writes it.
const ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const isoOf = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', ${ISO})`;
const fromEpochMs = (param: string) => `('epoch'::timestamptz + ${param}::bigint * interval '1 millisecond')`;

// The window includes its start and excludes its end. The index (user_id, system_time) finds it.
// Its bounds come as epoch milliseconds: a window reaching past 9999 or before year 1 (allowed by
// the query's rules near their edges) has no ISO text Postgres would read, but is a fine instant.
const READINGS = `
  SELECT u.id AS user_id, u.is_active,
         ${isoOf("s.synced_at")} AS synced_at,
         ${isoOf("s.newest_reading_at")} AS newest_reading_at,
         CASE WHEN u.is_active IS NOT FALSE THEN (
           SELECT json_agg(json_build_object(
                    'id', g.record_id,
                    'time', ${isoOf("g.system_time")},
                    'display_time', g.display_time,
                    'value_mg_dl', g.value_mg_dl,
                    'status', g.status,
                    'trend', g.trend,
                    'trend_rate', g.trend_rate,
                    'unit', g.unit,
                    'display_device', g.display_device,
                    'transmitter_generation', g.transmitter_generation
                  ) ORDER BY g.system_time, g.record_id)::text
           FROM public.glucose_readings g
           WHERE g.user_id = u.id AND g.system_time >= ${fromEpochMs("$2")} AND g.system_time < ${fromEpochMs("$3")}
         ) END AS readings
  FROM public.users u
  LEFT JOIN public.dexcom_sync_state s ON s.user_id = u.id
  WHERE u.firebase_uid = $1`;

interface ReadingsRow {
  user_id: number;
  is_active: boolean | null;
  synced_at: string | null;
  newest_reading_at: string | null;
  readings: string | null;
}

/** The caller's readings of [start, end) and sync state; null when no user has this Firebase uid. */
export async function glucoseReadings(db: Queryable, uid: string, window: Window): Promise<GlucoseReadings | null> {
  const [row] = await db.query<ReadingsRow>(READINGS, [uid, window.start.getTime(), window.end.getTime()]);
  if (row === undefined) return null;
  return {
    userId: row.user_id,
    isActive: row.is_active !== false,
    syncedAt: row.synced_at,
    newestReadingAt: row.newest_reading_at,
    // json_agg over no rows is NULL.
    readingsJson: row.readings ?? "[]",
  };
}
