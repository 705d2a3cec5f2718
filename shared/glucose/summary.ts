// GET /glucose-summary in one round trip: the caller and the summary of their readings in a window,
// every figure computed by Postgres over the index (user_id, system_time) INCLUDE (value_mg_dl,
// status), so the heap is not read.
import type { Queryable } from "../db/database.ts";
import type { Window } from "./window.ts";

/** Percentages of the counted readings in each range of the consensus (mg/dL). */
export interface GlucoseRanges {
  /** < 54 */
  very_low: number;
  /** 54-69 */
  low: number;
  /** 70-180 */
  in_range: number;
  /** 181-250 */
  high: number;
  /** > 250 */
  very_high: number;
}

/** One hour of the day (in the query's zone): percentiles of its readings in mg/dL, null when it has none. */
export interface AgpHour {
  hour: number;
  p5: number | null;
  p25: number | null;
  p50: number | null;
  p75: number | null;
  p95: number | null;
}

/**
 * The contract's summary (section "glucose history", `GET /glucose-summary`), as the International
 * Consensus on Time in Range defines its figures (Battelino et al., Diabetes Care 2019;42:1593-1603)
 * and the Glucose Management Indicator (Bergenstal et al., Diabetes Care 2018;41:2275-2280).
 * Numbers are not rounded.
 *
 * Which readings count: a reading with a value counts with `value_mg_dl` (mmol/L converted by the
 * table, × 18.0182, rounded); one without a value counts as 39 mg/dL when its status is `low`
 * (below the sensor's range) and 401 when `high` (above it); any other reading without a value
 * (status `ok`, `unknown`, null, ...) is left out of every figure.
 */
export interface GlucoseSummary {
  /** The window, ISO 8601 UTC; `start` included, `end` excluded. */
  start: string;
  end: string;
  /** The readings that count. */
  readings: number;
  /** Whole 5-minute slots in the window: floor(length / 5 min). */
  expected_readings: number;
  /**
   * readings × 100 / expected_readings, at most 100. No readings: 0. A window shorter than 5 minutes
   * (no whole slot) with readings: 100, the limit of the capped ratio.
   */
  cgm_active_percent: number;
  /** Calendar days in the query's zone with at least one counted reading. */
  days_with_data: number;
  /** mg/dL; null without readings. */
  mean_mg_dl: number | null;
  /** Sample standard deviation (n - 1), mg/dL; null with fewer than two readings. */
  sd_mg_dl: number | null;
  /** sd / mean × 100; null when sd is (or the mean is 0). */
  cv_percent: number | null;
  /** 3.31 + 0.02392 × mean (mg/dL), percent; null without readings. */
  gmi_percent: number | null;
  /** Null without readings. */
  ranges: GlucoseRanges | null;
  /** A window of at least 14 days (14 × 24 h) with cgm_active_percent >= 70. */
  sufficient: boolean;
  /** 24 entries, hours 0..23 of the day in the query's zone (an hour repeated by a DST change counts both times). */
  agp: AgpHour[];
}

export interface GlucoseSummaryResult {
  userId: number;
  /** Old rows may hold NULL; only an explicit false deactivates. */
  isActive: boolean;
  /** Computed only for an active caller (null otherwise). */
  summary: GlucoseSummary | null;
}

const fromEpochMs = (param: string) => `('epoch'::timestamptz + ${param}::bigint * interval '1 millisecond')`;

/**
 * The one statement (exported so that tests and benchmarks can EXPLAIN it). Parameters: $1
 * firebase_uid, $2 start and $3 end (epoch milliseconds: a window near year 1 or 9999 has no ISO
 * text Postgres would read), $4 the IANA zone (Postgres says 22023 "time zone ... not recognized"
 * for one it lacks). One row (user_id, is_active, summary as JSON text without start/end, null for
 * an inactive caller), or none when no user has the uid.
 *
 * Integers go into avg/stddev_samp, which then compute in numeric (exact sums), and the results are
 * cast to float8 once. percentile_cont interpolates linearly between the closest ranks (R's type 7).
 * `counted` is read twice (totals and hours), so Postgres materialises it: one index-only scan of
 * glucose_readings_user_time_idx (once the visibility map is set; about 35 ms for 90 days of
 * readings on the development machine).
 */
export const GLUCOSE_SUMMARY_SQL = `
  WITH caller AS (
    SELECT u.id, u.is_active IS NOT FALSE AS is_active
    FROM public.users u
    -- Evaluates the zone even when the window has no readings, so a zone Postgres does not
    -- know fails the same way whatever the data.
    WHERE u.firebase_uid = $1 AND ('epoch'::timestamptz AT TIME ZONE $4::text) IS NOT NULL
  ),
  counted AS (
    SELECT CASE WHEN g.value_mg_dl IS NOT NULL THEN g.value_mg_dl
                WHEN g.status = 'low' THEN 39
                ELSE 401
           END AS mg,
           (g.system_time AT TIME ZONE $4::text) AS local_time
    FROM caller c
    JOIN public.glucose_readings g
      ON g.user_id = c.id AND g.system_time >= ${fromEpochMs("$2")} AND g.system_time < ${fromEpochMs("$3")}
    WHERE c.is_active AND (g.value_mg_dl IS NOT NULL OR g.status IN ('low', 'high'))
  ),
  totals AS (
    SELECT count(*) AS n,
           avg(mg) AS mean,
           stddev_samp(mg) AS sd,
           count(DISTINCT local_time::date) AS days,
           count(*) FILTER (WHERE mg < 54) AS very_low,
           count(*) FILTER (WHERE mg BETWEEN 54 AND 69) AS low,
           count(*) FILTER (WHERE mg BETWEEN 70 AND 180) AS in_range,
           count(*) FILTER (WHERE mg BETWEEN 181 AND 250) AS high,
           count(*) FILTER (WHERE mg > 250) AS very_high
    FROM counted
  ),
  hours AS (
    SELECT extract(hour FROM local_time)::integer AS hour,
           percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) WITHIN GROUP (ORDER BY mg::float8) AS p
    FROM counted
    GROUP BY 1
  ),
  figures AS (
    SELECT t.*, floor(w.seconds / 300)::bigint AS expected, w.seconds >= 14 * 86400 AS long_enough,
           CASE WHEN t.n = 0 THEN 0::float8
                WHEN floor(w.seconds / 300) = 0 THEN 100::float8
                ELSE least(100, t.n * 100.0 / floor(w.seconds / 300))::float8
           END AS cgm
    FROM totals t
    CROSS JOIN (SELECT ($3::bigint - $2::bigint)::numeric / 1000 AS seconds) w
  )
  SELECT c.id AS user_id, c.is_active,
         CASE WHEN c.is_active THEN json_build_object(
           'readings', f.n,
           'expected_readings', f.expected,
           'cgm_active_percent', f.cgm,
           'days_with_data', f.days,
           'mean_mg_dl', f.mean::float8,
           'sd_mg_dl', f.sd::float8,
           'cv_percent', (f.sd / nullif(f.mean, 0) * 100)::float8,
           'gmi_percent', (3.31 + 0.02392 * f.mean)::float8,
           'ranges', CASE WHEN f.n > 0 THEN json_build_object(
             'very_low', (f.very_low * 100.0 / f.n)::float8,
             'low', (f.low * 100.0 / f.n)::float8,
             'in_range', (f.in_range * 100.0 / f.n)::float8,
             'high', (f.high * 100.0 / f.n)::float8,
             'very_high', (f.very_high * 100.0 / f.n)::float8
           ) END,
           'sufficient', f.long_enough AND f.cgm >= 70,
           'agp', (
             SELECT json_agg(json_build_object(
                      'hour', h.hour, 'p5', x.p[1], 'p25', x.p[2], 'p50', x.p[3], 'p75', x.p[4], 'p95', x.p[5]
                    ) ORDER BY h.hour)
             FROM generate_series(0, 23) AS h(hour)
             LEFT JOIN hours x ON x.hour = h.hour
           )
         )::text END AS summary
  FROM caller c
  CROSS JOIN figures f`;

interface SummaryRow {
  user_id: number;
  is_active: boolean;
  summary: string | null;
}

/**
 * The caller (by Firebase uid) and the summary of their readings in [start, end), days and hours
 * taken in the IANA zone `tz`; null when no user has this uid. A zone Postgres does not know makes
 * the query fail with SQLSTATE 22023 ("time zone ... not recognized").
 */
export async function glucoseSummary(
  db: Queryable,
  uid: string,
  window: Window,
  tz: string,
): Promise<GlucoseSummaryResult | null> {
  const [row] = await db.query<SummaryRow>(GLUCOSE_SUMMARY_SQL, [uid, window.start.getTime(), window.end.getTime(), tz]);
  if (row === undefined) return null;
  const figures = row.summary === null ? null : (JSON.parse(row.summary) as Omit<GlucoseSummary, "start" | "end">);
  return {
    userId: row.user_id,
    isActive: row.is_active,
    summary: figures === null
      ? null
      : { start: window.start.toISOString(), end: window.end.toISOString(), ...figures },
  };
}

/** SQLSTATE 22023 about the zone: Postgres does not know the zone it was given. */
export function isUnknownTimeZone(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === "22023" && typeof message === "string" && /time zone .* not recognized/i.test(message);
}
