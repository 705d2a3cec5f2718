import type { Queryable } from "../../shared/db/database.ts";

let counter = 0;

/** Inserts a user with unique identifiers unless given, and returns its id. */
export async function insertUser(
  db: Queryable,
  values: { firebase_uid?: string | null; email?: string | null; dexcom_user_id?: string | null } = {},
): Promise<number> {
  counter += 1;
  const [row] = await db.query<{ id: number }>(
    "INSERT INTO users (firebase_uid, email, dexcom_user_id) VALUES ($1, $2, $3) RETURNING id",
    [
      values.firebase_uid === undefined ? `uid-${counter}` : values.firebase_uid,
      values.email === undefined ? `user${counter}@example.com` : values.email,
      values.dexcom_user_id ?? null,
    ],
  );
  return row!.id;
}

/** Inserts an active (unless told otherwise) token row with placeholder ciphertexts. */
export async function insertToken(
  db: Queryable,
  userId: number,
  values: { is_revoked?: boolean | null; created_at?: string } = {},
): Promise<number> {
  const [row] = await db.query<{ id: number }>(
    `INSERT INTO dexcom_tokens
       (user_id, access_token_encrypted, refresh_token_encrypted, expires_in, expires_at, is_revoked, created_at)
     VALUES ($1, 'access-ciphertext', 'refresh-ciphertext', 7200, now() + interval '2 hours', $2, coalesce($3::timestamptz, now()))
     RETURNING id`,
    [userId, values.is_revoked === undefined ? false : values.is_revoked, values.created_at ?? null],
  );
  return row!.id;
}
