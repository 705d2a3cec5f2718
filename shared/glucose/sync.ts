// Copies a user's readings (EGVs) from Dexcom into Postgres. One module for the three ways a sync
// starts: POST /dexcom-sync (the person), POST /dexcom-sync/due and `npm run dexcom:sync` (the
// scheduler), and the OAuth callback (the first sync, in the background).
import type { Database } from "../db/database.ts";
import { DexcomBudgetSpent } from "../dexcom/call-budget.ts";
import { DexcomUnavailable } from "../dexcom/client.ts";
import { dexcomTime } from "../dexcom/iso-time.ts";
import type { DexcomServices } from "../dexcom/services.ts";
import { DexcomNotConnected, DexcomReauthorizationRequired } from "../dexcom/token-service.ts";
import { type Connection, connectionById } from "../dexcom/token-store.ts";
import type { Logger } from "../http/log.ts";
import { readingRows, storeReadings } from "./records.ts";
import {
  extendSyncLease,
  readSyncState,
  recordSyncFailure,
  recordSyncSuccess,
  type SyncState,
  takeSyncLease,
} from "./sync-state.ts";

export interface SyncResult {
  /** Readings stored for the first time by this sync (not ones sent again). */
  newReadings: number;
  newestReadingAt: Date | null;
  syncedAt: Date | null;
  /** Set when no sync ran: the last one finished under 60 s ago (its result is given). */
  skipped?: "too_soon";
  /** Records Dexcom sent that could not be read at all (no recordId or no time); the rest were kept. */
  skippedRecords: number;
}

export interface SyncOptions {
  requestId: string;
  /** When the sync must stop starting Dexcom calls (ms since the epoch); what it wrote by then stays. */
  deadline: number;
  /** POST /dexcom-sync: answer `too_soon` with the last result when it finished under 60 s ago. */
  skipIfRecent?: boolean;
  /** When another sync of this user runs: wait for it and give its result (true), or return null at once. */
  waitForRunning?: boolean;
  /** The scheduler: sync only while the user is still due (another run or the person may just have). */
  onlyIfDue?: boolean;
}

export interface SyncSettings {
  backfillDays: number;
  intervalMinutes: number;
}

/** Dexcom answers 400 for longer windows. */
const WINDOW_MS = 30 * 24 * 60 * 60 * 1000;
/** Later syncs start this long before the newest stored reading: Dexcom's data arrive late and in batches. */
const OVERLAP_MS = 60 * 60 * 1000;
/** A sync's lease, renewed after each window: longer than one window's calls (10 s each) and its write. */
const LEASE_SECONDS = 60;
const POLL_MS = 200;

export type GlucoseSync = ReturnType<typeof createGlucoseSync>;

/**
 * `syncUser(connection, options)`:
 * 1. one sync per user at a time, across every process: the sync lease in dexcom_sync_state; a
 *    caller that finds one running waits for it (bounded by its deadline) and gets its result;
 * 2. the window: the first sync reaches DEXCOM_BACKFILL_DAYS back, clamped to what Dexcom's
 *    `dataRange` says exists; later ones start an hour before the newest stored reading (never
 *    earlier than the backfill) and skip `dataRange` (one call less per user and hour);
 * 3. walked oldest first in windows of at most 30 days, each window's records upserted in one
 *    statement on (user_id, record_id), so an interrupted sync keeps what it wrote and the next
 *    one resumes from there;
 * 4. every Dexcom call goes through the token service (refresh, 401 retry) and the call budget.
 *
 * Errors: DexcomNotConnected, DexcomReauthorizationRequired (the user is marked), DexcomBudgetSpent,
 * DexcomRateLimited, DexcomUnavailable (also for waiting past the deadline); each failure is
 * recorded and backs the user off (see recordSyncFailure).
 */
export function createGlucoseSync(deps: {
  db: Database;
  dexcom: Pick<DexcomServices, "client" | "tokens">;
  logger: Logger;
  settings: SyncSettings;
}) {
  const { db, dexcom, logger, settings } = deps;

  async function syncUser(connection: Connection, options: SyncOptions): Promise<SyncResult | null> {
    const userId = connection.userId;
    let before = await readSyncState(db, userId);
    if (options.skipIfRecent && before.recent) return { ...resultOf(before), skipped: "too_soon" };
    const onlyIfDue = options.onlyIfDue ?? false;
    for (;;) {
      const holder = crypto.randomUUID();
      const state = await takeSyncLease(db, userId, holder, LEASE_SECONDS, { syncedAt: before.syncedAt, onlyIfDue });
      if (state !== null) return await run(connection, state, holder, options);
      let now = await readSyncState(db, userId);
      if (!now.leaseHeld) {
        // A sync finished since we looked: that is this caller's sync too. Or the scheduler's user
        // is no longer due. Either way nothing runs again.
        if (finishedSince(before, now)) return options.waitForRunning ? resultOf(now) : null;
        if (onlyIfDue) return null;
        before = now;
        continue;
      }
      if (!options.waitForRunning) return null;
      // Another process syncs this user: wait until it gives the lease back, then give its result,
      // or, when it failed, sync ourselves.
      while (now.leaseHeld) {
        if (Date.now() + POLL_MS >= options.deadline) throw new DexcomUnavailable("sync_wait_timeout");
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        now = await readSyncState(db, userId);
      }
      if (finishedSince(before, now)) return resultOf(now);
      before = now;
    }
  }

  async function run(connection: Connection, state: SyncState, holder: string, options: SyncOptions): Promise<SyncResult> {
    const userId = connection.userId;
    const request = { requestId: options.requestId, deadline: options.deadline };
    let newReadings = 0;
    let skippedRecords = 0;
    let complete = true;
    try {
      for (const window of await windowsFor(connection, state, request)) {
        if (Date.now() >= options.deadline) {
          complete = false; // the rest waits for the next sync, due at once
          break;
        }
        const body = await dexcom.tokens.withAccessToken(
          connection,
          request,
          (accessToken) => dexcom.client.egvs(accessToken, dexcomTime(window.start), dexcomTime(window.end), request),
        );
        const { rows, skipped } = readingRows((JSON.parse(body) as { records?: unknown }).records);
        skippedRecords += skipped;
        newReadings += (await storeReadings(db, userId, rows)).newReadings;
        await extendSyncLease(db, userId, holder, LEASE_SECONDS);
        // The token may have been refreshed: read the connection again for the next window.
        connection = (await connectionById(db, userId)) ?? connection;
      }
    } catch (error) {
      await recordFailure(userId, holder, error, options.requestId);
      throw error;
    }
    const done = await recordSyncSuccess(db, userId, holder, { newReadings, dueInMinutes: complete ? settings.intervalMinutes : 0 });
    if (skippedRecords > 0) logger.warn("dexcom_records_skipped", { request_id: options.requestId, user_id: userId, skipped: skippedRecords });
    logger.info("dexcom_synced", { request_id: options.requestId, user_id: userId, new_readings: newReadings });
    return { ...resultOf(done), newReadings, skippedRecords };
  }

  async function windowsFor(
    connection: Connection,
    state: SyncState,
    request: { requestId: string; deadline: number },
  ): Promise<{ start: Date; end: Date }[]> {
    const now = Date.now();
    const backfillStart = now - settings.backfillDays * 24 * 60 * 60 * 1000;
    let start: number;
    let end = now;
    if (state.newestReadingAt !== null) {
      start = Math.max(state.newestReadingAt.getTime() - OVERLAP_MS, backfillStart);
    } else {
      const range = await dexcom.tokens.withAccessToken(connection, request, (accessToken) =>
        dexcom.client.dataRange(accessToken, request)
      );
      if (range.egvs === null) return [];
      // Dexcom's end is inclusive; our windows' ends go one second further.
      start = Math.max(backfillStart, range.egvs.start?.getTime() ?? backfillStart);
      end = Math.min(now, (range.egvs.end?.getTime() ?? now) + 1000);
    }
    const windows: { start: Date; end: Date }[] = [];
    for (let from = Math.floor(start / 1000) * 1000; from < end; from += WINDOW_MS) {
      windows.push({ start: new Date(from), end: new Date(Math.min(from + WINDOW_MS, Math.ceil(end / 1000) * 1000)) });
    }
    return windows;
  }

  async function recordFailure(userId: number, holder: string, error: unknown, requestId: string): Promise<void> {
    const spent = error instanceof DexcomBudgetSpent;
    const reauth = error instanceof DexcomReauthorizationRequired;
    const code = spent ? "budget_spent"
      : reauth ? "reauthorization_required"
      : error instanceof DexcomNotConnected ? "not_connected"
      : error instanceof DexcomUnavailable ? error.reason
      : error instanceof Error ? error.name : "error";
    logger.warn("dexcom_sync_failed", { request_id: requestId, user_id: userId, error: code });
    await recordSyncFailure(db, userId, holder, {
      error: code,
      needsReauthorization: reauth,
      countAsFailure: !spent,
      intervalMinutes: settings.intervalMinutes,
    });
  }

  return { syncUser };
}

function finishedSince(before: SyncState, now: SyncState): boolean {
  return now.syncedAt !== null && (before.syncedAt === null || now.syncedAt > before.syncedAt);
}

function resultOf(state: SyncState): SyncResult {
  return { newReadings: state.lastNewReadings, newestReadingAt: state.newestReadingAt, syncedAt: state.syncedAt, skippedRecords: 0 };
}
