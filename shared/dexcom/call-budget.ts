// The hourly budget of calls to Dexcom that all processes share, kept in Postgres.
import type { Queryable } from "../db/database.ts";

/** The budget for the last hour is spent; `retryAfterSeconds` until a call can be made again. */
export class DexcomBudgetSpent extends Error {
  override name = "DexcomBudgetSpent";
  constructor(readonly retryAfterSeconds: number) {
    super("the hourly budget of calls to Dexcom is spent");
  }
}

/**
 * A function to call before each call to Dexcom: spends one call of `callsPerHour` (Dexcom allows
 * 60,000 an hour per app, across all its users), or throws DexcomBudgetSpent. One round trip to
 * dms.spend_dexcom_call, which keeps the count exact for any hour across every process.
 */
export function callBudget(db: Queryable, callsPerHour: number): () => Promise<void> {
  return async () => {
    const [row] = await db.query<{ wait: number }>("SELECT dms.spend_dexcom_call($1) AS wait", [callsPerHour]);
    if (row!.wait > 0) throw new DexcomBudgetSpent(row!.wait);
  };
}
