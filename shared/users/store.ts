import type { Queryable } from "../db/database.ts";
import type { User } from "../api/schemas.ts";
import { iso } from "../api/timestamps.ts";

export type Registration =
  | "created"
  | "updated"
  | "unchanged"
  | "adopted"
  | "email_in_use"
  | "user_inactive";

/** What registerUser answers: the caller's row, or why there is none to show. */
export type RegisterResult =
  | { outcome: Registration; user: User }
  // The email's key (below) is longer than the column's 255 characters; nothing was looked up.
  | { outcome: "email_too_long"; user: null };

interface UserRow {
  id: number;
  firebase_uid: string | null;
  email: string | null;
  dexcom_user_id: string | null;
  is_active: boolean | null;
  created_at: Date | string | null;
  updated_at: Date | string | null;
}

const USER_COLUMNS = "id, firebase_uid, email, dexcom_user_id, is_active, created_at, updated_at";

/**
 * POST /users in one round trip: dms.register_user does the lookups, adoption and insert under row
 * locks.
 *
 * `email` is the token's, exactly as it came (or null): the database turns it into its key with
 * `dms.email_key` (migration `20261129000001_email_key`: NFC, Unicode simple case folding in
 * lower case, İ to i + U+0307), stores that key, and finds rows by the key of their email, so a row
 * from before and a token for the same address meet however either is spelt in case. Nothing here
 * lower-cases an email: a second rule would split one address into two rows again.
 */
export async function registerUser(
  db: Queryable,
  caller: { uid: string; email: string | null; emailVerified: boolean },
): Promise<RegisterResult> {
  const [row] = await db.query<UserRow & { outcome: Registration | "email_too_long" }>(
    `SELECT outcome, ${USER_COLUMNS} FROM dms.register_user($1, $2, $3)`,
    [caller.uid, caller.email, caller.emailVerified],
  );
  if (row!.outcome === "email_too_long") return { outcome: "email_too_long", user: null };
  return { outcome: row!.outcome, user: toUser(row!) };
}

export async function findUser(db: Queryable, uid: string): Promise<User | null> {
  const [row] = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE firebase_uid = $1`, [uid]);
  return row ? toUser(row) : null;
}

/**
 * Deletes the user and, by cascade, their tokens and pending authorizations, recording each active
 * token as revoked (`account_deleted`) in the audit trail first; false when there was none.
 */
export async function deleteUser(db: Queryable, uid: string, requestId: string): Promise<boolean> {
  const [row] = await db.query<{ deleted: boolean }>("SELECT dms.delete_user($1, $2) AS deleted", [uid, requestId]);
  return row!.deleted;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    firebase_uid: row.firebase_uid,
    email: row.email,
    dexcom_user_id: row.dexcom_user_id,
    // Old rows may hold NULL; only an explicit false deactivates.
    is_active: row.is_active !== false,
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}
