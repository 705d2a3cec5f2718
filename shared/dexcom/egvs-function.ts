import { z } from "zod";
import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { Database } from "../db/database.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import { type ErrorDetail } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";
import { readQuery } from "../http/query.ts";
import { validate, validationFailed } from "../http/validation.ts";
import { dexcomHttpError, notConfigured } from "./http-errors.ts";
import { dexcomTime, parseInstant } from "./iso-time.ts";
import { DEXCOM_REQUEST_BUDGET_MS, type DexcomServices } from "./services.ts";
import { connectionByUid } from "./token-store.ts";

export interface DexcomEgvsDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  logger: Logger;
  allowedOrigins: readonly string[];
  dexcom: DexcomServices | null;
}

/** Dexcom answers 400 for longer windows. */
const MAX_WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

const egvsQuery = z.object({
  startDate: z.string({ error: "is required" }).max(64),
  endDate: z.string({ error: "is required" }).max(64),
});

/**
 * GET /dexcom-egvs?startDate&endDate: the caller's EGVs, Dexcom's `/v3/users/self/egvs` body passed
 * through. Dates: ISO 8601, no offset meaning UTC, each given once; end after start, at most 30
 * days apart; sent to Dexcom as UTC `YYYY-MM-DDTHH:mm:ss` (start rounded down, end up, to the second).
 */
export function dexcomEgvsFunction(deps: DexcomEgvsDependencies): (request: Request) => Promise<Response> {
  async function egvs(context: RequestContext): Promise<Response> {
    const dexcom = deps.dexcom;
    if (dexcom === null) throw notConfigured();
    const { uid } = await authenticate(context, deps.verifier, deps.logger);
    const window = egvsWindow(readQuery(context.request.url, ["startDate", "endDate"]));
    const deadline = Date.now() + DEXCOM_REQUEST_BUDGET_MS;

    const connection = await connectionByUid(deps.db, uid);
    if (connection === null) throw userNotFound();
    if (!connection.isActive) throw userInactive();
    try {
      const body = await dexcom.tokens.withAccessToken(
        connection,
        { requestId: context.requestId, deadline },
        (accessToken) => dexcom.client.egvs(accessToken, window.startDate, window.endDate, { deadline }),
      );
      return new Response(body, { status: 200, headers: { "content-type": "application/json; charset=utf-8" } });
    } catch (error) {
      throw dexcomHttpError(error);
    }
  }

  return createFunction({
    name: "dexcom-egvs",
    routes: { "": { GET: egvs } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}

function egvsWindow(params: URLSearchParams): { startDate: string; endDate: string } {
  const query = validate(egvsQuery, { startDate: params.get("startDate") ?? undefined, endDate: params.get("endDate") ?? undefined });
  const problems: ErrorDetail[] = [];
  const start = parseInstant(query.startDate);
  const end = parseInstant(query.endDate);
  if (start === null) problems.push({ path: "startDate", message: "is not an ISO 8601 date-time" });
  if (end === null) problems.push({ path: "endDate", message: "is not an ISO 8601 date-time" });
  if (start !== null && end !== null) {
    if (end <= start) problems.push({ path: "endDate", message: "must be after startDate" });
    else if (end.getTime() - start.getTime() > MAX_WINDOW_MS) {
      problems.push({ path: "endDate", message: "must be at most 30 days after startDate" });
    }
  }
  if (problems.length > 0) throw validationFailed(problems);
  // Dexcom takes whole seconds: the start goes down and the end up, so no record of the window is
  // left out. Rounding can stretch a window of just under 30 days past Dexcom's limit; records
  // have whole-second times, so ending at the rounded start + 30 days still takes them all.
  const startDown = Math.floor(start!.getTime() / 1000) * 1000;
  const endUp = Math.min(Math.ceil(end!.getTime() / 1000) * 1000, startDown + MAX_WINDOW_MS);
  // Dexcom's format has four-digit years.
  if (new Date(endUp).getUTCFullYear() > 9999) throw validationFailed([{ path: "endDate", message: "is out of range" }]);
  return { startDate: dexcomTime(new Date(startDown)), endDate: dexcomTime(new Date(endUp)) };
}
