// Moves every stored Dexcom token onto the key ring's primary key while the service keeps running.
//
// The table is walked by id in batches, each batch one transaction that locks its rows with
// FOR UPDATE SKIP LOCKED: a row that live traffic holds is skipped rather than waited for, and a
// locked row is re-read at its newest version, so a concurrent write is never overwritten with the
// stale ciphertext read before it. Each committed batch is final, so an interrupted run loses at
// most one batch, and the next run finds only the rows still pending. Only one batch and the ids of
// undecryptable rows are held in memory, however large the table.
import { InvalidToken } from "../crypto/fernet.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database, Queryable } from "../db/database.ts";
import type { Progress } from "./progress.ts";

export interface RotationOptions {
  batchSize: number;
  /** Classifies rows by their signatures only: decrypts nothing, locks nothing, writes nothing. */
  dryRun: boolean;
  onProgress?: (progress: Progress) => void;
}

export interface RotationSummary {
  /** Rows re-encrypted under the primary key (in a dry run: rows that would be). */
  rotated: number;
  /** Rows whose tokens were already under the primary key; only their key id was recorded. */
  alreadyCurrent: number;
  /** Ids of rows that no key of the ring opens; left untouched. */
  undecryptable: number[];
  /** Rows still pending after the last pass (held by live traffic, or written under an old key
   *  meanwhile); a later run picks them up. */
  busy: number;
}

interface TokenRow {
  id: number;
  access_token_encrypted: string;
  refresh_token_encrypted: string;
  encryption_key_id: string | null;
}

// "to rotate" is the dry run's "rotated": what a run would do, with nothing to write.
type Outcome =
  | { id: number; kind: "current" | "undecryptable" | "to rotate" }
  | { id: number; kind: "rotated"; access: string; refresh: string };

export const DEFAULT_BATCH_SIZE = 500;

// Rows skipped because live traffic held them get a few more passes, each after a longer pause;
// a row held longer than that is reported as busy rather than waited for.
const MAX_PASSES = 5;
const PASS_PAUSE_MS = 100;

export async function rotateTokens(db: Database, ring: KeyRing, options: RotationOptions): Promise<RotationSummary> {
  const summary: RotationSummary = { rotated: 0, alreadyCurrent: 0, undecryptable: [], busy: 0 };
  const total = await countPending(db, ring.primaryKeyId, []);
  let done = 0;
  const tally = (outcomes: readonly Outcome[]) => {
    for (const outcome of outcomes) {
      if (outcome.kind === "rotated" || outcome.kind === "to rotate") summary.rotated++;
      else if (outcome.kind === "current") summary.alreadyCurrent++;
      else summary.undecryptable.push(outcome.id);
    }
    done += outcomes.length;
    // Rows written under an old key during the run (by an old deployment) can push done past total.
    options.onProgress?.({ done, total: Math.max(total, done) });
  };

  if (options.dryRun) {
    await walk(options.batchSize, (last) => classifyBatch(db, ring, last, options.batchSize), tally);
    return summary;
  }
  for (let pass = 1; ; pass++) {
    // Later passes skip the rows already found undecryptable, so that each is reported once.
    const skip = pass === 1 ? [] : summary.undecryptable;
    await walk(options.batchSize, (last) => rotateBatch(db, ring, last, options.batchSize, skip), tally);
    const left = await countPending(db, ring.primaryKeyId, summary.undecryptable);
    if (left === 0) break;
    if (pass === MAX_PASSES) {
      summary.busy = left;
      break;
    }
    await sleep(PASS_PAUSE_MS * pass);
  }
  return summary;
}

// Keyset pagination: each batch starts after the last id of the one before, so every batch costs
// the same however far into the table it is. SKIP LOCKED does not shorten a batch (the LIMIT counts
// the rows returned), so a short batch means the end of the table.
async function walk(
  batchSize: number,
  batch: (lastId: number) => Promise<Outcome[]>,
  tally: (outcomes: readonly Outcome[]) => void,
): Promise<void> {
  let lastId = 0;
  for (;;) {
    const outcomes = await batch(lastId);
    if (outcomes.length > 0) tally(outcomes);
    if (outcomes.length < batchSize) return;
    lastId = outcomes.at(-1)!.id;
  }
}

function rotateBatch(db: Database, ring: KeyRing, lastId: number, limit: number, skip: readonly number[]) {
  return db.transaction(async (tx) => {
    const rows = await pendingRows(tx, ring, lastId, limit, skip, "FOR UPDATE SKIP LOCKED");
    // All rows at once: WebCrypto works on other threads, and keeping it busy is what makes it fast.
    const outcomes = await Promise.all(rows.map((row) => rotateRow(ring, row)));
    await writeBatch(tx, ring.primaryKeyId, outcomes);
    return outcomes;
  });
}

async function rotateRow(ring: KeyRing, row: TokenRow): Promise<Outcome> {
  if (row.encryption_key_id === null && (await isUnderPrimary(ring, row))) return { id: row.id, kind: "current" };
  try {
    const [access, refresh] = await Promise.all([
      ring.rotate(row.access_token_encrypted),
      ring.rotate(row.refresh_token_encrypted),
    ]);
    return { id: row.id, kind: "rotated", access, refresh };
  } catch (error) {
    if (error instanceof InvalidToken) return { id: row.id, kind: "undecryptable" };
    throw error;
  }
}

// Only rows without a key id can be under the primary key already: the Python backend wrote them,
// possibly under today's key, and re-encrypting them would change nothing but the IV. A row that
// records an old key was written under it, so asking its signature first would only add two HMACs
// per token, nearly a third of the work.
async function isUnderPrimary(ring: KeyRing, row: TokenRow): Promise<boolean> {
  return (
    (await ring.keyIdOf(row.access_token_encrypted)) === ring.primaryKeyId &&
    (await ring.keyIdOf(row.refresh_token_encrypted)) === ring.primaryKeyId
  );
}

// One statement per batch, whatever its size: the round trips, not the rows, are what cost. The
// JSON goes as text: postgres.js would encode a string given for a jsonb parameter once more.
async function writeBatch(tx: Queryable, primaryKeyId: string, outcomes: readonly Outcome[]): Promise<void> {
  // A current row keeps its tokens: null leaves them as stored.
  const updates = outcomes.flatMap((outcome): { id: number; a: string | null; r: string | null }[] => {
    if (outcome.kind === "current") return [{ id: outcome.id, a: null, r: null }];
    if (outcome.kind === "rotated") return [{ id: outcome.id, a: outcome.access, r: outcome.refresh }];
    return [];
  });
  if (updates.length === 0) return;
  await tx.query(
    `UPDATE public.dexcom_tokens AS t
        SET access_token_encrypted = coalesce(v.a, t.access_token_encrypted),
            refresh_token_encrypted = coalesce(v.r, t.refresh_token_encrypted),
            encryption_key_id = $2
       FROM jsonb_to_recordset($1::text::jsonb) AS v(id int, a text, r text)
      WHERE t.id = v.id`,
    [JSON.stringify(updates), primaryKeyId],
  );
}

async function classifyBatch(db: Queryable, ring: KeyRing, lastId: number, limit: number): Promise<Outcome[]> {
  const rows = await pendingRows(db, ring, lastId, limit, []);
  return Promise.all(rows.map((row) => classifyRow(ring, row)));
}

// As rotateRow decides, but by signatures alone.
async function classifyRow(ring: KeyRing, row: TokenRow): Promise<Outcome> {
  const [accessKey, refreshKey] = await Promise.all([
    ring.keyIdOf(row.access_token_encrypted),
    ring.keyIdOf(row.refresh_token_encrypted),
  ]);
  if (accessKey === null || refreshKey === null) return { id: row.id, kind: "undecryptable" };
  const underPrimary = accessKey === ring.primaryKeyId && refreshKey === ring.primaryKeyId;
  return { id: row.id, kind: row.encryption_key_id === null && underPrimary ? "current" : "to rotate" };
}

// The dry run reads with the same query, so it looks at exactly the rows a run would take.
function pendingRows(q: Queryable, ring: KeyRing, lastId: number, limit: number, skip: readonly number[], lock = "") {
  return q.query<TokenRow>(
    `SELECT id, access_token_encrypted, refresh_token_encrypted, encryption_key_id
       FROM public.dexcom_tokens
      WHERE id > $1 AND encryption_key_id IS DISTINCT FROM $2
        AND id NOT IN (SELECT unnest($4::int[]))
      ORDER BY id
      LIMIT $3 ${lock}`,
    [lastId, ring.primaryKeyId, limit, intArray(skip)],
  );
}

// NOT IN over a subquery is hashed once per statement, so a long list of skipped ids stays cheap.
async function countPending(db: Queryable, primaryKeyId: string, skip: readonly number[]): Promise<number> {
  const [row] = await db.query<{ pending: number }>(
    `SELECT count(*)::int AS pending
       FROM public.dexcom_tokens
      WHERE encryption_key_id IS DISTINCT FROM $1
        AND id NOT IN (SELECT unnest($2::int[]))`,
    [primaryKeyId, intArray(skip)],
  );
  return row!.pending;
}

// An array literal as text: both drivers pass it through unchanged for the ::int[] cast.
function intArray(ids: readonly number[]): string {
  return `{${ids.join(",")}}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
