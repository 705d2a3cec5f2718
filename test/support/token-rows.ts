import type { Queryable } from "../../shared/db/database.ts";

export interface TokenRowValues {
  access: string;
  refresh: string;
  /** The stored encryption_key_id; null as the Python backend left it. */
  keyId: string | null;
  expiresIn?: number;
}

/** Inserts token rows (without users) in one statement and returns their ids in the given order. */
export async function insertTokenRows(db: Queryable, rows: readonly TokenRowValues[]): Promise<number[]> {
  const values = rows.map((row, index) => ({ o: index, a: row.access, r: row.refresh, k: row.keyId, e: row.expiresIn ?? 7200 }));
  const inserted = await db.query<{ id: number }>(
    `INSERT INTO public.dexcom_tokens
       (access_token_encrypted, refresh_token_encrypted, encryption_key_id, expires_in, expires_at)
     SELECT v.a, v.r, v.k, v.e, now() + interval '2 hours'
       FROM jsonb_to_recordset($1::text::jsonb) AS v(o int, a text, r text, k text, e int)
      ORDER BY v.o
     RETURNING id`,
    [JSON.stringify(values)],
  );
  // The sequence hands out ids in the order the rows arrive, so ascending ids follow the input.
  return inserted.map((row) => row.id).sort((a, b) => a - b);
}

export interface StoredTokenRow {
  id: number;
  access_token_encrypted: string;
  refresh_token_encrypted: string;
  encryption_key_id: string | null;
  expires_in: number;
  /** The whole row as Postgres prints it, to tell a row left byte-for-byte alone. */
  text: string;
}

export async function tokenRows(db: Queryable): Promise<StoredTokenRow[]> {
  return db.query<StoredTokenRow>(
    `SELECT id, access_token_encrypted, refresh_token_encrypted, encryption_key_id, expires_in, t::text AS text
       FROM public.dexcom_tokens AS t
      ORDER BY id`,
  );
}
