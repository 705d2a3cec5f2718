// The scheduler's run: syncs the users whose sync is due, several at once, the longest-waiting
// first, until the time to start new ones is over or the call budget is spent.
import type { Database } from "../db/database.ts";
import { DexcomBudgetSpent } from "../dexcom/call-budget.ts";
import { connectionById } from "../dexcom/token-store.ts";
import type { Logger } from "../http/log.ts";
import { countDueUsers, dueUsers } from "./sync-state.ts";
import type { GlucoseSync } from "./sync.ts";

export interface DueSummary {
  /** Users tried, failed ones included. */
  users: number;
  new_readings: number;
  failed: number;
  /** Due users left for the budget or the time limit (none running elsewhere). */
  deferred: number;
}

export interface DueOptions {
  requestId: string;
  /** No user is started after this (ms since the epoch), and no Dexcom call begins. */
  startUntil: number;
  /** Users synced at once: enough to keep 25,000 users hourly with one run a minute (README). */
  concurrency?: number;
  /** Told after each user (the command's progress line). */
  onUser?: (summary: Omit<DueSummary, "deferred">) => void;
}

export const DUE_CONCURRENCY = 16;
const BATCH = 64;

/**
 * Runs until no due user is left, `startUntil` passes, or the budget is spent. Invocations may
 * overlap: a user another one is syncing is not due (its lease is live) and is skipped.
 */
export async function syncDueUsers(
  deps: { db: Database; sync: GlucoseSync; logger: Logger },
  options: DueOptions,
): Promise<DueSummary> {
  const summary = { users: 0, new_readings: 0, failed: 0 };
  const tried = new Set<number>();
  let queue: number[] = [];
  let finished = false;

  // One batch at a time for all workers, so that they do not all ask for the same users.
  let refilling: Promise<void> | null = null;
  async function next(): Promise<number | null> {
    while (!finished && Date.now() < options.startUntil) {
      const userId = queue.shift();
      if (userId !== undefined) {
        if (tried.has(userId)) continue;
        tried.add(userId);
        return userId;
      }
      refilling ??= dueUsers(deps.db, BATCH).then((ids) => {
        queue = ids.filter((id) => !tried.has(id));
        if (queue.length === 0) finished = true;
      }).finally(() => (refilling = null));
      await refilling;
    }
    return null;
  }

  async function worker(): Promise<void> {
    for (let userId = await next(); userId !== null; userId = await next()) {
      const connection = await connectionById(deps.db, userId);
      if (connection === null || connection.token === null) continue;
      try {
        const result = await deps.sync.syncUser(connection, {
          requestId: options.requestId,
          deadline: options.startUntil,
          onlyIfDue: true,
        });
        if (result === null) continue; // another invocation is on it
        summary.users += 1;
        summary.new_readings += result.newReadings;
      } catch (error) {
        if (error instanceof DexcomBudgetSpent) {
          // Not the user's fault and not a failure: they stay due, and nobody else is started.
          finished = true;
          continue;
        }
        summary.users += 1;
        summary.failed += 1;
      }
      options.onUser?.({ ...summary });
    }
  }

  await Promise.all(Array.from({ length: options.concurrency ?? DUE_CONCURRENCY }, worker));
  const deferred = await countDueUsers(deps.db);
  deps.logger.info("dexcom_due_synced", { request_id: options.requestId, ...summary, deferred });
  return { ...summary, deferred };
}
