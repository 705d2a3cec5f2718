// The SQL of a user's sync state: the sync lease (one sync per user across every process), what
// the last sync did, and which users are due. Times are the database's.
import type { Queryable } from "../db/database.ts";

export interface SyncState {
  /** When the last sync finished; null before the first. */
  syncedAt: Date | null;
  lastNewReadings: number;
  newestReadingAt: Date | null;
  /** The last sync finished less than 60 s ago (POST /dexcom-sync answers `too_soon`). */
  recent: boolean;
  /** A sync of this user is running somewhere. */
  leaseHeld: boolean;
}

interface StateRow {
  synced_at: Date | string | null;
  last_new_readings: number | null;
  newest_reading_at: Date | string | null;
  recent: boolean | null;
  lease_held: boolean | null;
}

const date = (value: Date | string | null) => (value === null ? null : new Date(value));

function toState(row: StateRow | undefined): SyncState {
  return {
    syncedAt: date(row?.synced_at ?? null),
    lastNewReadings: row?.last_new_readings ?? 0,
    newestReadingAt: date(row?.newest_reading_at ?? null),
    recent: row?.recent === true,
    leaseHeld: row?.lease_held === true,
  };
}

const STATE_COLUMNS = `synced_at, last_new_readings, newest_reading_at,
  synced_at > now() - interval '60 seconds' AS recent, lease_expires_at > now() AS lease_held`;

export async function readSyncState(db: Queryable, userId: number): Promise<SyncState> {
  const [row] = await db.query<StateRow>(`SELECT ${STATE_COLUMNS} FROM dexcom_sync_state WHERE user_id = $1`, [userId]);
  return toState(row);
}

/**
 * Takes the user's sync lease for `seconds` unless a live one is held (the row is created on the
 * first sync), and only while the state is as the caller last saw it: no sync finished since
 * (`syncedAtSeen`), and, for the scheduler (`onlyIfDue`), the user still due. Exactly one of any
 * number of racers wins: the upsert's condition is re-checked on the newest row version. Returns
 * the state as the winner found it, or null.
 */
export async function takeSyncLease(
  db: Queryable,
  userId: number,
  holder: string,
  seconds: number,
  seen: { syncedAt: Date | null; onlyIfDue: boolean },
): Promise<SyncState | null> {
  const [row] = await db.query<StateRow>(
    `INSERT INTO dexcom_sync_state AS s (user_id, lease_holder, lease_expires_at, last_attempt_at)
     VALUES ($1, $2, now() + make_interval(secs => $3), now())
     ON CONFLICT (user_id) DO UPDATE
       SET lease_holder = excluded.lease_holder, lease_expires_at = excluded.lease_expires_at,
           last_attempt_at = excluded.last_attempt_at
       WHERE (s.lease_expires_at IS NULL OR s.lease_expires_at <= now())
         -- Times travel as milliseconds (JavaScript's Date); the column keeps microseconds.
         AND date_trunc('milliseconds', s.synced_at) IS NOT DISTINCT FROM $4::timestamptz
         AND (NOT $5 OR s.next_due_at <= now())
     RETURNING ${STATE_COLUMNS}`,
    [userId, holder, seconds, seen.syncedAt, seen.onlyIfDue],
  );
  return row ? toState(row) : null;
}

/** Keeps a long sync's lease alive (after each window). */
export async function extendSyncLease(db: Queryable, userId: number, holder: string, seconds: number): Promise<void> {
  await db.query(
    `UPDATE dexcom_sync_state SET lease_expires_at = now() + make_interval(secs => $3)
     WHERE user_id = $1 AND lease_holder = $2`,
    [userId, holder, seconds],
  );
}

/** A finished sync: its result recorded, the failures cleared, the next one due after the interval; the lease given back. */
export async function recordSyncSuccess(
  db: Queryable,
  userId: number,
  holder: string,
  result: { newReadings: number; dueInMinutes: number },
): Promise<SyncState> {
  const [row] = await db.query<StateRow>(
    `UPDATE dexcom_sync_state
     SET synced_at = now(), last_new_readings = $3, next_due_at = now() + make_interval(mins => $4),
         failures = 0, last_error = NULL, needs_reauthorization = false,
         lease_holder = NULL, lease_expires_at = NULL
     WHERE user_id = $1 AND lease_holder = $2
     RETURNING ${STATE_COLUMNS}`,
    [userId, holder, result.newReadings, result.dueInMinutes],
  );
  return toState(row);
}

/**
 * A failed sync: counted, with its error code, and the next try moved later the more failures
 * there were in a row (the interval, doubling, at most a day); a refused refresh marks the user
 * as needing to connect again. The lease is given back. `countAsFailure` false (the call budget
 * was spent: not the user's failure): the user stays due as they were, so the next run takes them
 * first and counts them as deferred meanwhile.
 */
export async function recordSyncFailure(
  db: Queryable,
  userId: number,
  holder: string,
  failure: { error: string; needsReauthorization: boolean; countAsFailure: boolean; intervalMinutes: number },
): Promise<void> {
  await db.query(
    `UPDATE dexcom_sync_state
     SET failures = failures + $3::int,
         last_error = $4,
         needs_reauthorization = needs_reauthorization OR $5,
         next_due_at = CASE
           WHEN $3::int = 0 THEN next_due_at
           ELSE now() + least(make_interval(mins => $6) * power(2, least(failures, 10)), interval '1 day')
         END,
         lease_holder = NULL, lease_expires_at = NULL
     WHERE user_id = $1 AND lease_holder = $2`,
    [userId, holder, failure.countAsFailure ? 1 : 0, failure.error, failure.needsReauthorization, failure.intervalMinutes],
  );
}

const DUE = `
  FROM users u
  JOIN LATERAL (
    SELECT t.created_at FROM dexcom_tokens t WHERE t.user_id = u.id AND t.is_revoked IS NOT TRUE
    ORDER BY t.created_at DESC NULLS LAST, t.id DESC LIMIT 1
  ) t ON true
  LEFT JOIN dexcom_sync_state s ON s.user_id = u.id
  WHERE u.is_active IS NOT FALSE
    AND (s.user_id IS NULL OR (s.next_due_at <= now() AND (s.lease_expires_at IS NULL OR s.lease_expires_at <= now())))`;

/**
 * Connected, active users whose sync is due (never synced, or next_due_at passed) and not running,
 * the longest-waiting first. A user whose refresh was refused has no active token until they
 * connect again, so is never among them.
 */
export async function dueUsers(db: Queryable, limit: number): Promise<number[]> {
  const rows = await db.query<{ user_id: number }>(
    `SELECT u.id AS user_id ${DUE} ORDER BY coalesce(s.next_due_at, t.created_at) NULLS FIRST, u.id LIMIT $1`,
    [limit],
  );
  return rows.map((row) => row.user_id);
}

export async function countDueUsers(db: Queryable): Promise<number> {
  const [row] = await db.query<{ n: number }>(`SELECT count(*)::int AS n ${DUE}`);
  return row!.n;
}
