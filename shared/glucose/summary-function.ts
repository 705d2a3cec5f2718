import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { Database } from "../db/database.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import { jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";
import { readQuery } from "../http/query.ts";
import { validationFailed } from "../http/validation.ts";
import { glucoseSummary, isUnknownTimeZone } from "./summary.ts";
import { ianaTimeZone } from "./time-zone.ts";
import { DAY_MS, readWindow } from "./window.ts";

export interface GlucoseSummaryDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  logger: Logger;
  allowedOrigins: readonly string[];
}

const DEFAULT_WINDOW_MS = 14 * DAY_MS;
const MAX_WINDOW_MS = 90 * DAY_MS;
const unknownZone = () =>
  validationFailed([{ path: "tz", message: "is not a known IANA time zone name (UTC, or Area/Location such as Europe/Berlin)" }]);

/**
 * GET /glucose-summary?start&end&tz: the caller's summary of the window (see GlucoseSummary in
 * summary.ts): `start`/`end` ISO 8601 (no offset = UTC; default the last 14 days; at most 90 days;
 * start included, end excluded), `tz` an IANA zone identifier for days and AGP hours (default UTC;
 * the rule: ianaTimeZone in time-zone.ts); each at most once.
 * 200 `{"summary": {...}}`; 400 validation_failed (path start, end or tz); 404 user_not_found;
 * 403 user_inactive. A user who was never connected has no readings: the empty summary.
 */
export function glucoseSummaryFunction(deps: GlucoseSummaryDependencies): (request: Request) => Promise<Response> {
  async function summary(context: RequestContext): Promise<Response> {
    const { uid } = await authenticate(context, deps.verifier, deps.logger);
    const params = readQuery(context.request.url, ["start", "end", "tz"]);
    const window = readWindow(params, { defaultMs: DEFAULT_WINDOW_MS, maxMs: MAX_WINDOW_MS });
    const tz = timeZone(params.get("tz"));

    let result;
    try {
      result = await glucoseSummary(deps.db, uid, window, tz);
    } catch (error) {
      // The zone is known here but not to the database (its tz data older than ours).
      if (isUnknownTimeZone(error)) throw unknownZone();
      throw error;
    }
    if (result === null) throw userNotFound();
    if (!result.isActive) throw userInactive();
    return jsonResponse(200, { summary: result.summary });
  }

  return createFunction({
    name: "glucose-summary",
    routes: { "": { GET: summary } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}

/** `tz`, absent: UTC; otherwise an IANA zone identifier (the rule: ianaTimeZone in time-zone.ts). */
function timeZone(text: string | null): string {
  if (text === null) return "UTC";
  const zone = ianaTimeZone(text);
  if (zone === null) throw unknownZone();
  return zone;
}
