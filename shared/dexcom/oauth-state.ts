// OAuth states and their storage. The state travels through the person's browser and Dexcom; we
// keep only its SHA-256, bound to the user, for 10 minutes, and consume it exactly once.
import { base64url } from "jose";
import type { Queryable } from "../db/database.ts";

/** How long a started authorization may take (the contract's 10 minutes). */
export const STATE_LIFETIME_MINUTES = 10;

/** A new state: 256 random bits in base64url (43 characters). */
export function newState(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
}

// Hex, decoded in SQL: every driver passes text the same way.
async function stateHash(state: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(state)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export type StartOutcome =
  | { outcome: "started"; expiresAt: Date }
  | { outcome: "user_not_found"; expiresAt?: undefined }
  | { outcome: "user_inactive"; expiresAt?: undefined };

/**
 * Records a started authorization for the caller (by Firebase uid), and forgets the caller's
 * expired ones. One round trip; an unknown or inactive caller records nothing.
 */
export async function recordState(db: Queryable, uid: string, state: string): Promise<StartOutcome> {
  const [row] = await db.query<{ user_id: number | null; is_active: boolean | null; expires_at: Date | string | null }>(
    `WITH caller AS (
       SELECT id, is_active FROM users WHERE firebase_uid = $1
     ), expired AS (
       DELETE FROM dexcom_oauth_states s USING caller WHERE s.user_id = caller.id AND s.expires_at <= now()
     ), started AS (
       INSERT INTO dexcom_oauth_states (state_hash, user_id, expires_at)
       SELECT decode($2, 'hex'), id, now() + make_interval(mins => $3) FROM caller WHERE is_active IS NOT FALSE
       RETURNING expires_at
     )
     SELECT (SELECT id FROM caller) AS user_id, (SELECT is_active FROM caller) AS is_active,
            (SELECT expires_at FROM started) AS expires_at`,
    [uid, await stateHash(state), STATE_LIFETIME_MINUTES],
  );
  if (row!.user_id === null) return { outcome: "user_not_found" };
  if (row!.expires_at === null) return { outcome: "user_inactive" };
  return { outcome: "started", expiresAt: new Date(row!.expires_at) };
}

/**
 * Consumes a state: deleted in one statement, so of any number of callbacks with it exactly one
 * gets its user. Null when it is unknown, used, expired, or its user was deleted (the cascade took it).
 */
export async function consumeState(
  db: Queryable,
  state: string,
): Promise<{ userId: number; firebaseUid: string | null; isActive: boolean } | null> {
  const [row] = await db.query<{ user_id: number; firebase_uid: string | null; is_active: boolean | null }>(
    `WITH consumed AS (
       DELETE FROM dexcom_oauth_states WHERE state_hash = decode($1, 'hex') RETURNING user_id, expires_at
     )
     SELECT u.id AS user_id, u.firebase_uid, u.is_active
     FROM consumed JOIN users u ON u.id = consumed.user_id
     WHERE consumed.expires_at > now()`,
    [await stateHash(state)],
  );
  return row ? { userId: row.user_id, firebaseUid: row.firebase_uid, isActive: row.is_active !== false } : null;
}
