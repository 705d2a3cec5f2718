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

/** One round trip: dms.register_user does the lookups, adoption and insert under row locks. */
export async function registerUser(
  db: Queryable,
  caller: { uid: string; email: string | null; emailVerified: boolean },
): Promise<{ outcome: Registration; user: User }> {
  const [row] = await db.query<UserRow & { outcome: Registration }>(
    `SELECT outcome, ${USER_COLUMNS} FROM dms.register_user($1, $2, $3)`,
    [caller.uid, caller.email, caller.emailVerified],
  );
  return { outcome: row!.outcome, user: toUser(row!) };
}

export async function findUser(db: Queryable, uid: string): Promise<User | null> {
  const [row] = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE firebase_uid = $1`, [uid]);
  return row ? toUser(row) : null;
}

/** Deletes the user and, by cascade, their tokens; false when there was none. */
export async function deleteUser(db: Queryable, uid: string): Promise<boolean> {
  const rows = await db.query("DELETE FROM users WHERE firebase_uid = $1 RETURNING id", [uid]);
  return rows.length > 0;
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
