import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database } from "../db/database.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { readJsonBody } from "../http/body.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import { HttpError, jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";
import { validate } from "../http/validation.ts";
import { storeTokenRequest } from "../api/schemas.ts";
import { activeToken, revokeTokens, storeToken } from "./store.ts";

export interface DexcomTokensDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  keyRing: KeyRing;
  logger: Logger;
  allowedOrigins: readonly string[];
}

export function dexcomTokensFunction(deps: DexcomTokensDependencies): (request: Request) => Promise<Response> {
  const caller = (context: RequestContext) => authenticate(context, deps.verifier, deps.logger);

  async function store(context: RequestContext): Promise<Response> {
    const { uid } = await caller(context);
    const input = validate(storeTokenRequest, await readJsonBody(context.request));
    const [accessTokenEncrypted, refreshTokenEncrypted] = await Promise.all([
      deps.keyRing.encrypt(input.access_token),
      deps.keyRing.encrypt(input.refresh_token),
    ]);
    const { outcome, token } = await storeToken(deps.db, uid, {
      accessTokenEncrypted,
      refreshTokenEncrypted,
      encryptionKeyId: deps.keyRing.primaryKeyId,
      expiresIn: input.expires_in,
      tokenType: input.token_type,
      scope: input.scope,
      dexcomUserId: input.dexcom_user_id ?? null,
    }, context.requestId);
    if (outcome === "user_not_found") throw userNotFound();
    if (outcome === "user_inactive") throw userInactive();
    if (outcome === "dexcom_account_in_use") {
      throw new HttpError(409, "dexcom_account_in_use", "This Dexcom account is connected to another user.");
    }
    return jsonResponse(201, { token });
  }

  async function status(context: RequestContext): Promise<Response> {
    const found = await activeToken(deps.db, (await caller(context)).uid);
    if (found === null) throw userNotFound();
    if (!found.isActive) throw userInactive();
    return jsonResponse(200, { connected: found.token !== null, token: found.token });
  }

  async function revoke(context: RequestContext): Promise<Response> {
    const result = await revokeTokens(deps.db, (await caller(context)).uid, context.requestId);
    if (result === null) throw userNotFound();
    if (!result.isActive) throw userInactive();
    return jsonResponse(200, { revoked: result.revoked });
  }

  return createFunction({
    name: "dexcom-tokens",
    routes: { "": { POST: store, GET: status, DELETE: revoke } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}
