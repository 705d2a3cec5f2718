import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { Database } from "../db/database.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import type { Logger } from "../http/log.ts";
import { readQuery } from "../http/query.ts";
import { glucoseReadings } from "./readings.ts";
import { DAY_MS, readWindow } from "./window.ts";

export interface GlucoseReadingsDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  logger: Logger;
  allowedOrigins: readonly string[];
}

const DEFAULT_WINDOW_MS = DAY_MS;
const MAX_WINDOW_MS = 90 * DAY_MS;

/**
 * GET /glucose-readings?start&end: the caller's stored readings of [start, end), oldest first,
 * with their sync state: 200 `{"readings": [...], "synced_at": ISO | null, "newest_reading_at":
 * ISO | null}`. Default window: the last 24 h; at most 90 days; a start after the end, a date
 * that is not ISO 8601, or a parameter given twice, is 400 validation_failed. An unknown caller
 * 404 user_not_found, an inactive one 403 user_inactive; a caller never connected gets no
 * readings and nulls.
 * Served from Postgres only: it never calls Dexcom.
 */
export function glucoseReadingsFunction(deps: GlucoseReadingsDependencies): (request: Request) => Promise<Response> {
  async function get(context: RequestContext): Promise<Response> {
    const { uid } = await authenticate(context, deps.verifier, deps.logger);
    const window = readWindow(readQuery(context.request.url, ["start", "end"]), {
      defaultMs: DEFAULT_WINDOW_MS,
      maxMs: MAX_WINDOW_MS,
    });
    const found = await glucoseReadings(deps.db, uid, window);
    if (found === null) throw userNotFound();
    if (!found.isActive) throw userInactive();
    // The readings are JSON already (written by Postgres); only the frame is written here.
    const body = `{"readings":${found.readingsJson},"synced_at":${JSON.stringify(found.syncedAt)},` +
      `"newest_reading_at":${JSON.stringify(found.newestReadingAt)}}`;
    return new Response(body, { status: 200, headers: { "content-type": "application/json; charset=utf-8" } });
  }

  return createFunction({
    name: "glucose-readings",
    routes: { "": { GET: get } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}
