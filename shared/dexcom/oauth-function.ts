import { z } from "zod";
import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database } from "../db/database.ts";
import { storeToken } from "../dexcom-tokens/store.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { readJsonBody } from "../http/body.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import { jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";
import { repeatedParameters } from "../http/query.ts";
import { validate } from "../http/validation.ts";
import { DexcomInvalidGrant, DexcomOAuthError, type TokenAnswer } from "./client.ts";
import { notConfigured } from "./http-errors.ts";
import { consumeState, newState, recordState } from "./oauth-state.ts";
import { connectionById } from "./token-store.ts";
import { DEXCOM_REQUEST_BUDGET_MS, type DexcomServices } from "./services.ts";

export interface DexcomOAuthDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  keyRing: KeyRing;
  logger: Logger;
  allowedOrigins: readonly string[];
  dexcom: DexcomServices | null;
  background(task: Promise<unknown>): void;
}

/** `start` takes no body, or an empty JSON object. */
const startRequest = z.strictObject({}).optional();

/** Why a callback failed, as the app's redirect says it (`?status=error&reason=`). */
type FailureReason = "invalid_state" | "user_inactive" | "dexcom_error" | "dexcom_unavailable" | "dexcom_account_in_use";

/** The first sync (up to DEXCOM_BACKFILL_DAYS in 30-day windows) may take longer than a request. */
const FIRST_SYNC_MS = 60_000;

// A state we issue is 43 characters; anything far longer is not one of ours.
const MAX_STATE_LENGTH = 512;

/**
 * The OAuth 2.0 authorization code flow with Dexcom (RFC 6749 §4.1; Dexcom: no PKCE, client
 * credentials in the form body).
 *
 * POST /dexcom-oauth/start -> 200 {authorize_url, state, expires_at}: a new state (256 bits), bound
 * to the caller, stored as its SHA-256 for 10 minutes.
 *
 * GET /dexcom-oauth/callback?code&state (or &error): consumes the state, exchanges the code, reads
 * the Dexcom userId from dataRange, stores the pair as POST /dexcom-tokens does, and answers 302 to
 * DEXCOM_APP_REDIRECT_URL with `status=connected`, `status=denied` or `status=error&reason=<code>`,
 * nothing else from the request. A repeated `state` is invalid_state (no state used up); a repeated
 * `code` or `error` is dexcom_error (the state used up).
 */
export function dexcomOAuthFunction(deps: DexcomOAuthDependencies): (request: Request) => Promise<Response> {
  function configured(): DexcomServices & { appRedirectUrl: string } {
    const dexcom = deps.dexcom;
    if (dexcom === null || dexcom.config.appRedirectUrl === null) throw notConfigured();
    return { ...dexcom, appRedirectUrl: dexcom.config.appRedirectUrl };
  }

  async function start(context: RequestContext): Promise<Response> {
    const dexcom = configured();
    const { uid } = await authenticate(context, deps.verifier, deps.logger);
    validate(startRequest, await readJsonBody(context.request));
    const state = newState();
    const started = await recordState(deps.db, uid, state);
    if (started.outcome === "user_not_found") throw userNotFound();
    if (started.outcome === "user_inactive") throw userInactive();
    const { expiresAt } = started;
    return jsonResponse(200, {
      authorize_url: dexcom.client.authorizeUrl(state),
      state,
      expires_at: expiresAt.toISOString(),
    }, { "cache-control": "no-store" });
  }

  async function callback(context: RequestContext): Promise<Response> {
    const dexcom = configured();
    const params = new URL(context.request.url).searchParams;
    const redirect = (status: "connected" | "denied" | "error", reason?: FailureReason) => {
      const target = new URL(dexcom.appRedirectUrl);
      target.searchParams.set("status", status);
      if (reason !== undefined) target.searchParams.set("reason", reason);
      else target.searchParams.delete("reason");
      // The callback's URL carries the code and state: no cache may keep this answer, and no
      // Referer may carry it on.
      return new Response(null, {
        status: 302,
        headers: { location: target.toString(), "cache-control": "no-store", "referrer-policy": "no-referrer" },
      });
    };
    const fail = (reason: FailureReason, detail?: string) => {
      deps.logger.warn("dexcom_oauth_failed", { request_id: context.requestId, reason, ...(detail ? { detail } : {}) });
      return redirect("error", reason);
    };

    // A parameter given twice has no one meaning; the contract answers every callback with a
    // redirect, so it is a failure like a missing one: no state to use up when it is the state,
    // Dexcom's answer unreadable (dexcom_error, the state used up) when it is the code or error.
    const state = params.get("state");
    if (state === null || state === "" || state.length > MAX_STATE_LENGTH) return fail("invalid_state", "missing_or_malformed");
    if (repeatedParameters(params, ["state"]).length > 0) return fail("invalid_state", "repeated_parameter");
    const owner = await consumeState(deps.db, state);
    if (owner === null || owner.firebaseUid === null) return fail("invalid_state", "unknown_expired_or_used");
    context.setUser(owner.firebaseUid);
    if (!owner.isActive) return fail("user_inactive");

    if (repeatedParameters(params, ["error", "code"]).length > 0) return fail("dexcom_error", "repeated_parameter");
    const error = params.get("error");
    if (error === "access_denied") {
      deps.logger.info("dexcom_oauth_denied", { request_id: context.requestId });
      return redirect("denied");
    }
    if (error !== null) return fail("dexcom_error", "error_parameter");
    const code = params.get("code");
    if (code === null || code === "" || code.length > 4096) return fail("dexcom_error", "missing_code");

    const deadline = Date.now() + DEXCOM_REQUEST_BUDGET_MS;
    let pair: TokenAnswer;
    let dexcomUserId: string;
    try {
      pair = await dexcom.client.exchangeCode(code, { deadline });
      dexcomUserId = (await dexcom.client.dataRange(pair.accessToken, { deadline })).userId;
    } catch (error) {
      if (error instanceof DexcomInvalidGrant) return fail("dexcom_error", "invalid_grant");
      if (error instanceof DexcomOAuthError) return fail("dexcom_error", error.code);
      return fail("dexcom_unavailable", error instanceof Error ? error.name : "error");
    }

    const [accessTokenEncrypted, refreshTokenEncrypted] = await Promise.all([
      deps.keyRing.encrypt(pair.accessToken),
      deps.keyRing.encrypt(pair.refreshToken),
    ]);
    const { outcome } = await storeToken(deps.db, owner.firebaseUid, {
      accessTokenEncrypted,
      refreshTokenEncrypted,
      encryptionKeyId: deps.keyRing.primaryKeyId,
      expiresIn: pair.expiresIn,
      tokenType: pair.tokenType,
      scope: "offline_access",
      dexcomUserId,
    }, context.requestId);
    if (outcome === "user_not_found") return fail("invalid_state", "user_deleted");
    if (outcome === "user_inactive") return fail("user_inactive");
    if (outcome === "dexcom_account_in_use") return fail("dexcom_account_in_use");
    deps.logger.info("dexcom_connected", { request_id: context.requestId });
    firstSync(owner.userId, context.requestId);
    return redirect("connected");
  }

  // The first sync runs after the redirect has gone out; it must not delay it. Its failure is
  // recorded in the sync state (and retried by the scheduler), so here it is only logged.
  function firstSync(userId: number, requestId: string): void {
    const dexcom = deps.dexcom!;
    const task = (async () => {
      const connection = await connectionById(deps.db, userId);
      if (connection === null) return;
      await dexcom.sync.syncUser(connection, { requestId, deadline: Date.now() + FIRST_SYNC_MS });
    })().catch((error) => {
      deps.logger.warn("dexcom_first_sync_failed", { request_id: requestId, error: error instanceof Error ? error.name : "error" });
    });
    deps.background(task);
  }

  return createFunction({
    name: "dexcom-oauth",
    routes: { "/start": { POST: start }, "/callback": { GET: callback } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}
