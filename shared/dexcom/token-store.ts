// The SQL of a Dexcom connection: reading the active token, the refresh lease, storing a refreshed
// pair and revoking a rejected one. Times are compared with the database's clock, which every
// process and isolate shares.
import type { Queryable } from "../db/database.ts";

export interface StoredToken {
  id: number;
  accessTokenEncrypted: string;
  /** Expires more than 60 s from now (the contract's margin). */
  fresh: boolean;
  /** Another worker holds a live refresh lease on it. */
  leaseHeld: boolean;
}

export interface Connection {
  userId: number;
  isActive: boolean;
  /** The newest active token, or null when not connected. */
  token: StoredToken | null;
  /** Why the newest token was revoked, when there is no active one (refresh_rejected, user_request, ...). */
  lastRevokedReason: string | null;
}

interface ConnectionRow {
  user_id: number;
  is_active: boolean | null;
  id: number | null;
  access_token_encrypted: string | null;
  fresh: boolean | null;
  lease_held: boolean | null;
  last_revoked_reason: string | null;
}

export type TokenEvent = "refresh_failed" | "decrypt_failed";

const REFRESH_MARGIN = "60 seconds";

const connectionQuery = (where: string) => `
  SELECT u.id AS user_id, u.is_active, t.id, t.access_token_encrypted,
         t.expires_at > now() + interval '${REFRESH_MARGIN}' AS fresh,
         t.refresh_lease_expires_at > now() AS lease_held,
         CASE WHEN t.id IS NULL THEN (
           SELECT r.revoked_reason FROM dexcom_tokens r WHERE r.user_id = u.id
           ORDER BY r.created_at DESC NULLS LAST, r.id DESC LIMIT 1
         ) END AS last_revoked_reason
  FROM users u
  LEFT JOIN LATERAL (
    SELECT t.* FROM dexcom_tokens t
    WHERE t.user_id = u.id AND t.is_revoked IS NOT TRUE
    ORDER BY t.created_at DESC NULLS LAST, t.id DESC
    LIMIT 1
  ) t ON true
  WHERE ${where}`;

const BY_UID = connectionQuery("u.firebase_uid = $1");
const BY_ID = connectionQuery("u.id = $1");

/** The caller's connection in one round trip; null when no user has this Firebase uid. */
export async function connectionByUid(db: Queryable, uid: string): Promise<Connection | null> {
  const [row] = await db.query<ConnectionRow>(BY_UID, [uid]);
  return row ? toConnection(row) : null;
}

/** The same by user id (while waiting for another worker's refresh); null when the user is gone. */
export async function connectionById(db: Queryable, userId: number): Promise<Connection | null> {
  const [row] = await db.query<ConnectionRow>(BY_ID, [userId]);
  return row ? toConnection(row) : null;
}

/**
 * Takes the refresh lease on an active token for `seconds`, unless another worker holds a live
 * one. Under READ COMMITTED the UPDATE re-checks its condition on the newest row version after
 * waiting for a concurrent writer, so of any number of racers exactly one wins, and none wins a
 * row that a finished refresh has just revoked. Returns the encrypted refresh token to the winner.
 */
export async function takeRefreshLease(
  db: Queryable,
  tokenId: number,
  holder: string,
  seconds: number,
): Promise<string | null> {
  const [row] = await db.query<{ refresh_token_encrypted: string }>(
    `UPDATE dexcom_tokens
     SET refresh_lease_holder = $2, refresh_lease_expires_at = now() + make_interval(secs => $3)
     WHERE id = $1 AND is_revoked IS NOT TRUE
       AND (refresh_lease_expires_at IS NULL OR refresh_lease_expires_at <= now())
     RETURNING refresh_token_encrypted`,
    [tokenId, holder, seconds],
  );
  return row?.refresh_token_encrypted ?? null;
}

/** Gives the lease back (after a failed refresh), so the next request may try at once. */
export async function releaseRefreshLease(db: Queryable, tokenId: number, holder: string): Promise<void> {
  await db.query(
    `UPDATE dexcom_tokens SET refresh_lease_holder = NULL, refresh_lease_expires_at = NULL
     WHERE id = $1 AND refresh_lease_holder = $2`,
    [tokenId, holder],
  );
}

export interface RefreshedPair {
  accessTokenEncrypted: string;
  refreshTokenEncrypted: string;
  encryptionKeyId: string;
  expiresIn: number;
  tokenType: string;
}

/** dms.store_refreshed_dexcom_token: the new row's id, or null when the old row is no longer active. */
export async function storeRefreshedToken(
  db: Queryable,
  oldTokenId: number,
  pair: RefreshedPair,
  requestId: string,
): Promise<number | null> {
  const [row] = await db.query<{ outcome: "stored" | "gone"; id: number | null }>(
    "SELECT outcome, id FROM dms.store_refreshed_dexcom_token($1, $2, $3, $4, $5, $6, $7)",
    [
      oldTokenId,
      pair.accessTokenEncrypted,
      pair.refreshTokenEncrypted,
      pair.expiresIn,
      pair.tokenType,
      pair.encryptionKeyId,
      requestId,
    ],
  );
  return row!.outcome === "stored" ? row!.id : null;
}

/** dms.reject_dexcom_refresh: revoked, or left alone because it was superseded or another refresh is on its way. */
export async function rejectRefresh(
  db: Queryable,
  tokenId: number,
  holder: string,
  requestId: string,
): Promise<"revoked" | "superseded" | "contended"> {
  const [row] = await db.query<{ outcome: "revoked" | "superseded" | "contended" }>(
    "SELECT dms.reject_dexcom_refresh($1, $2, $3) AS outcome",
    [tokenId, holder, requestId],
  );
  return row!.outcome;
}

/** An audit event that changes no token (a failed refresh, an unreadable token). */
export async function recordTokenEvent(
  db: Queryable,
  event: { userId: number; tokenId: number; event: TokenEvent; reason: string; requestId: string },
): Promise<void> {
  await db.query(
    `INSERT INTO dexcom_token_events (user_id, token_id, event, reason, request_id) VALUES ($1, $2, $3, $4, $5)`,
    [event.userId, event.tokenId, event.event, event.reason, event.requestId],
  );
}

function toConnection(row: ConnectionRow): Connection {
  return {
    userId: row.user_id,
    isActive: row.is_active !== false,
    token: row.id === null
      ? null
      : { id: row.id, accessTokenEncrypted: row.access_token_encrypted!, fresh: row.fresh === true, leaseHeld: row.lease_held === true },
    lastRevokedReason: row.last_revoked_reason,
  };
}
