// Hands out a usable Dexcom access token for a user, refreshing it when needed, so that of any
// number of concurrent requests (across processes and isolates) exactly one spends the user's
// single-use refresh token, and the new pair is stored before anyone uses it.
import { InvalidToken } from "../crypto/fernet.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database } from "../db/database.ts";
import { isDatabaseUnavailable } from "../db/unavailable.ts";
import type { Logger } from "../http/log.ts";
import { DexcomBudgetSpent } from "./call-budget.ts";
import {
  type DexcomClient,
  DexcomInvalidGrant,
  DexcomOAuthError,
  DexcomRateLimited,
  DexcomUnauthorized,
  DexcomUnavailable,
  type TokenAnswer,
} from "./client.ts";
import {
  type Connection,
  connectionById,
  recordTokenEvent,
  rejectRefresh,
  releaseRefreshLease,
  storeRefreshedToken,
  takeRefreshLease,
} from "./token-store.ts";

/** The user has no active Dexcom token. */
export class DexcomNotConnected extends Error {
  override name = "DexcomNotConnected";
}

/** Dexcom refused the refresh token (invalid_grant) and no newer pair exists: the person must connect again. */
export class DexcomReauthorizationRequired extends Error {
  override name = "DexcomReauthorizationRequired";
}

/** A stored token cannot be decrypted with any configured key (ENCRYPTION_KEY, PREVIOUS_ENCRYPTION_KEYS). */
export class DexcomTokenUnreadable extends Error {
  override name = "DexcomTokenUnreadable";
}

/** Why a connection without an active token cannot be used: a refused refresh needs a new connection. */
export function notConnected(connection: Connection): DexcomNotConnected | DexcomReauthorizationRequired {
  return connection.lastRevokedReason === "refresh_rejected" ? new DexcomReauthorizationRequired() : new DexcomNotConnected();
}

export interface TokenRequest {
  requestId: string;
  /** When the whole request must be done with Dexcom (ms since the epoch); waits and calls end by then. */
  deadline: number;
}

export interface TokenServiceOptions {
  db: Database;
  keyRing: KeyRing;
  client: DexcomClient;
  logger: Logger;
  /** How long a refresh lease lasts: longer than a refresh call (10 s) and storing its result. */
  leaseSeconds?: number;
  /** How often a request waiting for another worker's refresh looks again. */
  pollMs?: number;
}

export type TokenService = ReturnType<typeof createTokenService>;

const LEASE_SECONDS = 20;
const POLL_MS = 100;

/**
 * The token service, after Tidepool's token source: `withAccessToken(connection, request, call)`
 * runs `call` with a usable access token, refreshing first when the token expires within 60 s, and
 * once more (then retrying `call` once) when Dexcom answers 401.
 *
 * Refresh protocol (Dexcom's refresh tokens are single use, RFC 6749 §6 with rotation):
 * 1. take the row's refresh lease in Postgres (one winner; see takeRefreshLease); the others wait,
 *    polling the row, until a newer token is stored, the lease is given back or the deadline passes;
 * 2. the winner refreshes and stores the new pair (old row revoked `refreshed`, new row inserted,
 *    both recorded, one transaction) before returning the access token;
 * 3. `invalid_grant`: the row is re-read under its lock (dms.reject_dexcom_refresh); when nothing
 *    newer exists it is revoked `refresh_rejected`, else the newer token is used;
 * 4. any other failure is transient: recorded as `refresh_failed`, the lease given back, the token kept.
 *
 * Errors: DexcomNotConnected, DexcomReauthorizationRequired, DexcomTokenUnreadable, and from the
 * client DexcomUnavailable (also for a wait past the deadline) and DexcomRateLimited.
 */
export function createTokenService(options: TokenServiceOptions) {
  const { db, keyRing, client, logger } = options;
  const leaseSeconds = options.leaseSeconds ?? LEASE_SECONDS;
  const pollMs = options.pollMs ?? POLL_MS;

  async function usableToken(
    first: Connection,
    request: TokenRequest,
    rejectedTokenId: number | null,
  ): Promise<{ tokenId: number; accessToken: string }> {
    let connection: Connection | null = first;
    for (;;) {
      if (connection === null) throw new DexcomNotConnected();
      const token = connection.token;
      if (token === null) throw notConnected(connection);
      if (token.fresh && token.id !== rejectedTokenId) {
        return { tokenId: token.id, accessToken: await readable(connection.userId, token.id, token.accessTokenEncrypted, request) };
      }
      if (!token.leaseHeld) {
        const holder = crypto.randomUUID();
        const refreshTokenEncrypted = await takeRefreshLease(db, token.id, holder, leaseSeconds);
        if (refreshTokenEncrypted !== null) {
          const refreshed = await refresh(connection.userId, token.id, holder, refreshTokenEncrypted, request);
          if (refreshed !== null) return refreshed;
        }
      }
      // Another worker is refreshing (or just did): look again shortly, within the deadline.
      if (Date.now() + pollMs >= request.deadline) throw new DexcomUnavailable("refresh_wait_timeout");
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      connection = await connectionById(db, connection.userId);
    }
  }

  // The winner's part; null when the row turned out to be superseded (the caller looks again).
  async function refresh(
    userId: number,
    tokenId: number,
    holder: string,
    refreshTokenEncrypted: string,
    request: TokenRequest,
  ): Promise<{ tokenId: number; accessToken: string } | null> {
    let answer: TokenAnswer;
    try {
      const refreshToken = await readable(userId, tokenId, refreshTokenEncrypted, request);
      answer = await client.refresh(refreshToken, { deadline: request.deadline });
    } catch (error) {
      if (error instanceof DexcomInvalidGrant) {
        const outcome = await rejectRefresh(db, tokenId, holder, request.requestId);
        logger.warn("dexcom_refresh_rejected", { request_id: request.requestId, user_id: userId, token_id: tokenId, outcome });
        if (outcome === "revoked") throw new DexcomReauthorizationRequired();
        return null;
      }
      await releaseRefreshLease(db, tokenId, holder);
      if (error instanceof DexcomTokenUnreadable) throw error;
      const reason = failureReason(error);
      await recordTokenEvent(db, { userId, tokenId, event: "refresh_failed", reason, requestId: request.requestId });
      logger.warn("dexcom_refresh_failed", { request_id: request.requestId, user_id: userId, token_id: tokenId, reason });
      throw error instanceof DexcomOAuthError ? new DexcomUnavailable(reason) : error;
    }
    const [newAccessEncrypted, newRefreshEncrypted] = await Promise.all([
      keyRing.encrypt(answer.accessToken),
      keyRing.encrypt(answer.refreshToken),
    ]);
    const pair = {
      accessTokenEncrypted: newAccessEncrypted,
      refreshTokenEncrypted: newRefreshEncrypted,
      encryptionKeyId: keyRing.primaryKeyId,
      expiresIn: answer.expiresIn,
      tokenType: answer.tokenType,
    };
    // Dexcom has already killed the old refresh token: losing this pair would disconnect the
    // person, so a database hiccup gets a second try. Safe to repeat: when the first try did
    // commit, the second finds the old row revoked and stores nothing.
    let newTokenId: number | null;
    try {
      newTokenId = await storeRefreshedToken(db, tokenId, pair, request.requestId);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      logger.warn("dexcom_refresh_store_retried", { request_id: request.requestId, user_id: userId, token_id: tokenId });
      newTokenId = await storeRefreshedToken(db, tokenId, pair, request.requestId);
    }
    // Disconnected (or replaced) while we refreshed: the new pair is dropped, never used.
    if (newTokenId === null) return null;
    logger.info("dexcom_token_refreshed", { request_id: request.requestId, user_id: userId, token_id: newTokenId });
    return { tokenId: newTokenId, accessToken: answer.accessToken };
  }

  async function readable(userId: number, tokenId: number, encrypted: string, request: TokenRequest): Promise<string> {
    try {
      return new TextDecoder().decode(await keyRing.decrypt(encrypted));
    } catch (error) {
      if (!(error instanceof InvalidToken)) throw error;
      await recordTokenEvent(db, { userId, tokenId, event: "decrypt_failed", reason: "no_key_matches", requestId: request.requestId });
      logger.error("dexcom_token_unreadable", {
        request_id: request.requestId,
        user_id: userId,
        token_id: tokenId,
        message: "A stored Dexcom token cannot be decrypted with ENCRYPTION_KEY or PREVIOUS_ENCRYPTION_KEYS.",
      });
      throw new DexcomTokenUnreadable("a stored Dexcom token cannot be decrypted");
    }
  }

  return {
    /**
     * Runs `call` with the user's access token (see above). `connection` is what the caller read
     * (connectionByUid); `call` may throw DexcomUnauthorized once, and is then retried with a
     * refreshed token. A second 401 is DexcomUnavailable("unauthorized_after_refresh").
     */
    async withAccessToken<T>(connection: Connection, request: TokenRequest, call: (accessToken: string) => Promise<T>): Promise<T> {
      const first = await usableToken(connection, request, null);
      try {
        return await call(first.accessToken);
      } catch (error) {
        if (!(error instanceof DexcomUnauthorized)) throw error;
      }
      const again = await connectionById(db, connection.userId);
      const second = await usableToken(again ?? connection, request, first.tokenId);
      try {
        return await call(second.accessToken);
      } catch (error) {
        if (error instanceof DexcomUnauthorized) throw new DexcomUnavailable("unauthorized_after_refresh");
        throw error;
      }
    },
  };
}

// What the audit trail and the log say about a failed refresh: never anything from the answer's body.
function failureReason(error: unknown): string {
  if (error instanceof DexcomUnavailable) return error.reason;
  if (error instanceof DexcomRateLimited) return "rate_limited";
  if (error instanceof DexcomBudgetSpent) return "budget_spent";
  if (error instanceof DexcomOAuthError) return `oauth_${error.code}`;
  return "error";
}
