// Which key the stored tokens are under, for `npm run db:check`: rows that record their key id are
// counted by it without reading a token; rows the Python backend wrote record none, and only their
// access token's signature is checked, which tells the key without decrypting anything.
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Queryable } from "./database.ts";

export interface StoredKeyCount {
  /** null for rows without a key id (written by the Python backend). */
  keyId: string | null;
  rows: number;
}

export interface KeyUsage {
  /** Every key of the ring, in the ring's order, with its rows (possibly 0). */
  perKey: { keyId: string; rows: number }[];
  /** Rows under no key of the ring: a stored key id the ring lacks, or a signature no key matches. */
  unknown: number;
  /** Rows without a stored key id, matched to a key by signature. */
  legacy: number;
}

const LEGACY_BATCH_SIZE = 1000;

/** Whether the table and its key id column exist (a project whose migrations are not pushed yet). */
export async function hasKeyIdColumn(db: Queryable): Promise<boolean> {
  const [row] = await db.query<{ present: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'dexcom_tokens' AND column_name = 'encryption_key_id'
     ) AS present`,
  );
  return row?.present === true;
}

export async function countByStoredKeyId(db: Queryable): Promise<StoredKeyCount[]> {
  const rows = await db.query<{ key_id: string | null; rows: number }>(
    `SELECT encryption_key_id AS key_id, count(*)::int AS rows
       FROM public.dexcom_tokens
      GROUP BY 1
      ORDER BY 2 DESC, 1 NULLS LAST`,
  );
  return rows.map((row) => ({ keyId: row.key_id, rows: row.rows }));
}

export async function keyUsage(db: Queryable, ring: KeyRing): Promise<KeyUsage> {
  const perKey = new Map(ring.keyIds.map((keyId) => [keyId, 0]));
  let unknown = 0;
  for (const { keyId, rows } of await countByStoredKeyId(db)) {
    if (keyId === null) continue;
    if (perKey.has(keyId)) perKey.set(keyId, perKey.get(keyId)! + rows);
    else unknown += rows;
  }
  let legacy = 0;
  await forEachLegacyBatch(db, async (tokens) => {
    legacy += tokens.length;
    for (const keyId of await Promise.all(tokens.map((token) => ring.keyIdOf(token)))) {
      if (keyId === null) unknown++;
      else perKey.set(keyId, perKey.get(keyId)! + 1);
    }
  });
  return { perKey: [...perKey].map(([keyId, rows]) => ({ keyId, rows })), unknown, legacy };
}

// Keyset pagination, so memory holds one batch however many legacy rows there are.
async function forEachLegacyBatch(db: Queryable, visit: (tokens: string[]) => Promise<void>): Promise<void> {
  let lastId = 0;
  for (;;) {
    const rows = await db.query<{ id: number; token: string }>(
      `SELECT id, access_token_encrypted AS token
         FROM public.dexcom_tokens
        WHERE encryption_key_id IS NULL AND id > $1
        ORDER BY id
        LIMIT $2`,
      [lastId, LEGACY_BATCH_SIZE],
    );
    if (rows.length > 0) await visit(rows.map((row) => row.token));
    if (rows.length < LEGACY_BATCH_SIZE) return;
    lastId = rows.at(-1)!.id;
  }
}
