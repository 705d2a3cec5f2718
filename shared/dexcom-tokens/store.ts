import type { Queryable } from "../db/database.ts";
import type { Token } from "../api/schemas.ts";
import { iso } from "../api/timestamps.ts";

interface TokenRow {
  id: number;
  token_type: string | null;
  scope: string | null;
  expires_at: Date | string;
  created_at: Date | string | null;
  updated_at: Date | string | null;
}

export interface EncryptedToken {
  accessTokenEncrypted: string;
  refreshTokenEncrypted: string;
  encryptionKeyId: string;
  expiresIn: number;
  tokenType: string;
  scope: string;
  dexcomUserId: string | null;
}

export type StoreOutcome = "stored" | "user_not_found" | "user_inactive" | "dexcom_account_in_use";

/**
 * One round trip: dms.store_dexcom_token revokes (reason `replaced`) and inserts in one transaction
 * under the user's row lock, recording both in the audit trail with the request's id.
 */
export async function storeToken(
  db: Queryable,
  uid: string,
  token: EncryptedToken,
  requestId: string,
): Promise<{ outcome: StoreOutcome; token: Token | null }> {
  const [row] = await db.query<TokenRow & { outcome: StoreOutcome }>(
    `SELECT outcome, id, token_type, scope, expires_at, created_at, updated_at
     FROM dms.store_dexcom_token($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      uid,
      token.accessTokenEncrypted,
      token.refreshTokenEncrypted,
      token.expiresIn,
      token.tokenType,
      token.scope,
      token.dexcomUserId,
      token.encryptionKeyId,
      requestId,
    ],
  );
  return { outcome: row!.outcome, token: row!.outcome === "stored" ? toToken(row!) : null };
}

/** The caller's activity and newest active token, in one query; null when the caller is unknown. */
export async function activeToken(
  db: Queryable,
  uid: string,
): Promise<{ isActive: boolean; token: Token | null } | null> {
  const [row] = await db.query<{ is_active: boolean | null } & Partial<TokenRow>>(
    `SELECT u.is_active, t.id, t.token_type, t.scope, t.expires_at, t.created_at, t.updated_at
     FROM users u
     LEFT JOIN LATERAL (
       SELECT t.id, t.token_type, t.scope, t.expires_at, t.created_at, t.updated_at FROM dexcom_tokens t
       WHERE t.user_id = u.id AND t.is_revoked IS NOT TRUE
       ORDER BY t.created_at DESC NULLS LAST, t.id DESC
       LIMIT 1
     ) t ON true
     WHERE u.firebase_uid = $1`,
    [uid],
  );
  if (!row) return null;
  return { isActive: row.is_active !== false, token: row.id == null ? null : toToken(row as TokenRow) };
}

/**
 * DELETE /dexcom-tokens: revokes the caller's active tokens (reason `user_request`, recorded in the
 * audit trail) in one round trip; null when the caller is unknown.
 */
export async function revokeTokens(
  db: Queryable,
  uid: string,
  requestId: string,
): Promise<{ isActive: boolean; revoked: number } | null> {
  const [row] = await db.query<{ found: boolean; is_active: boolean | null; revoked: number }>(
    "SELECT found, is_active, revoked FROM dms.disconnect_dexcom($1, $2)",
    [uid, requestId],
  );
  if (!row!.found) return null;
  return { isActive: row!.is_active !== false, revoked: row!.revoked };
}

function toToken(row: TokenRow): Token {
  return {
    id: row.id,
    token_type: row.token_type,
    scope: row.scope,
    expires_at: iso(row.expires_at)!,
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}
