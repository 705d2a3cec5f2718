import { z } from "zod";
import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { Database } from "../db/database.ts";
import { dexcomHttpError, notConfigured } from "../dexcom/http-errors.ts";
import { DEXCOM_REQUEST_BUDGET_MS, type DexcomServices } from "../dexcom/services.ts";
import { notConnected } from "../dexcom/token-service.ts";
import { connectionByUid } from "../dexcom/token-store.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { bearerMatches } from "../http/bearer-secret.ts";
import { readJsonBody } from "../http/body.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import { HttpError, jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";
import { validate } from "../http/validation.ts";
import { syncDueUsers } from "./due.ts";
import type { SyncResult } from "./sync.ts";

export interface DexcomSyncDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  logger: Logger;
  allowedOrigins: readonly string[];
  dexcom: DexcomServices | null;
}

/** Both endpoints take no body, or an empty JSON object. */
const noBody = z.strictObject({}).optional();

/** The scheduler's run starts no user after this long (the contract's 50 s). */
export const DUE_RUN_MS = 50_000;

/**
 * POST /dexcom-sync: syncs the caller now (pull-to-refresh): 200 {"sync": {"new_readings",
 * "newest_reading_at", "synced_at"}}, with "skipped": "too_soon" (and the last result) when the
 * last sync finished under 60 s ago; a sync of the caller already running is waited for.
 *
 * POST /dexcom-sync/due (Authorization: Bearer DEXCOM_SYNC_SECRET): syncs the due users for at
 * most 50 s: 200 {"users", "new_readings", "failed", "deferred"}.
 */
export function dexcomSyncFunction(deps: DexcomSyncDependencies): (request: Request) => Promise<Response> {
  async function syncCaller(context: RequestContext): Promise<Response> {
    const dexcom = deps.dexcom;
    if (dexcom === null) throw notConfigured();
    const { uid } = await authenticate(context, deps.verifier, deps.logger);
    validate(noBody, await readJsonBody(context.request));
    const connection = await connectionByUid(deps.db, uid);
    if (connection === null) throw userNotFound();
    if (!connection.isActive) throw userInactive();
    try {
      if (connection.token === null) throw notConnected(connection);
      const result = await dexcom.sync.syncUser(connection, {
        requestId: context.requestId,
        deadline: Date.now() + DEXCOM_REQUEST_BUDGET_MS,
        skipIfRecent: true,
        waitForRunning: true,
      });
      return jsonResponse(200, { sync: syncBody(result!) });
    } catch (error) {
      throw dexcomHttpError(error);
    }
  }

  async function syncDue(context: RequestContext): Promise<Response> {
    const dexcom = deps.dexcom;
    const secret = dexcom?.config.syncSecret ?? null;
    if (dexcom === null || secret === null) throw notConfigured();
    if (!(await bearerMatches(context.request, secret))) {
      deps.logger.warn("auth_failed", { request_id: context.requestId, reason: "sync_secret" });
      throw new HttpError(401, "invalid_token", "The scheduler's secret is missing or wrong.", {
        headers: { "www-authenticate": `Bearer error="invalid_token"` },
      });
    }
    validate(noBody, await readJsonBody(context.request));
    const summary = await syncDueUsers(
      { db: deps.db, sync: dexcom.sync, logger: deps.logger },
      { requestId: context.requestId, startUntil: Date.now() + DUE_RUN_MS },
    );
    return jsonResponse(200, summary);
  }

  return createFunction({
    name: "dexcom-sync",
    routes: { "": { POST: syncCaller }, "/due": { POST: syncDue } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}

function syncBody(result: SyncResult) {
  return {
    new_readings: result.newReadings,
    newest_reading_at: result.newestReadingAt?.toISOString() ?? null,
    synced_at: (result.syncedAt ?? new Date()).toISOString(),
    ...(result.skipped ? { skipped: result.skipped } : {}),
  };
}
