import { loadKeyRing, previousKeyEntries } from "../crypto/key-ring.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import { inspectDatabase } from "../db/check.ts";
import type { Database } from "../db/database.ts";
import { countByStoredKeyId, hasKeyIdColumn, keyUsage } from "../db/key-usage.ts";
import type { KeyUsage } from "../db/key-usage.ts";
import { databaseTarget, describeTarget, openDatabase } from "../db/open.ts";
import type { DatabaseTarget } from "../db/open.ts";
import { count } from "./count.ts";
import { withDeadline } from "./deadline.ts";
import { errorLine } from "./error-line.ts";

const CONNECT_TIMEOUT_S = 5;
// No statement of an operator command may hang on a database that stopped answering; a minute is
// far more than any of its statements or batch transactions needs.
const STATEMENT_DEADLINE_MS = 60_000;

export interface Output {
  log(line: string): void;
  error(line: string): void;
}

type Env = Record<string, string | undefined>;

/**
 * `npm run db:check`: exit code 0 when the database answers, 1 with one clear line otherwise.
 * Rows under no key of the ring are warned about but do not fail it: the connection works.
 */
export async function dbCheck(env: Env, out: Output): Promise<number> {
  let target: DatabaseTarget | undefined;
  let db: Database | undefined;
  try {
    // First, and before any target is known, so a bad key is reported in the key ring's own words.
    const ring = await optionalKeyRing(env);
    target = databaseTarget(env);
    db = await openDatabase(target, { max: 1, connectTimeout: CONNECT_TIMEOUT_S, deadlineMs: STATEMENT_DEADLINE_MS });
    // The driver's own timeout does not cover every way a connection can hang.
    const report = await withDeadline(inspectDatabase(db), (CONNECT_TIMEOUT_S + 2) * 1000);
    out.log(`database: ${describeTarget(target)}`);
    out.log(`server: ${report.server}`);
    const newest = report.newestMigration;
    out.log(`newest migration: ${newest ? `${newest.version} ${newest.name ?? ""}`.trim() : "none applied"}`);
    for (const line of await keyReport(db, ring, env)) out.log(line);
    return 0;
  } catch (error) {
    out.error(`db:check failed: ${errorLine(error, target)}`);
    return 1;
  } finally {
    await withDeadline(db?.close() ?? Promise.resolve(), 1000).catch(() => {});
  }
}

// The ring is optional here: db:check must also help before any key is configured.
function optionalKeyRing(env: Env): Promise<KeyRing | undefined> {
  return env.ENCRYPTION_KEY?.trim() ? loadKeyRing(env) : Promise.resolve(undefined);
}

async function keyReport(db: Database, ring: KeyRing | undefined, env: Env): Promise<string[]> {
  if (!(await hasKeyIdColumn(db))) {
    return ["token rows by key: no dexcom_tokens.encryption_key_id yet (apply the migrations)"];
  }
  if (!ring) {
    return [...storedKeyLines(await countByStoredKeyId(db)), "ENCRYPTION_KEY not set: rows not matched against a key ring"];
  }
  // One snapshot, so the stored ids and the signature walk count each row exactly once.
  const usage = await db.transaction(async (tx) => {
    await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    return keyUsage(tx, ring);
  });
  return keyUsageLines(usage, previousKeyEntries(env).map((entry) => entry.position));
}

function storedKeyLines(counts: { keyId: string | null; rows: number }[]): string[] {
  if (counts.length === 0) return ["token rows by stored key id: none"];
  return [
    "token rows by stored key id:",
    ...counts.map(({ keyId, rows }) => row(keyId ?? "none (written by the Python backend)", rows)),
  ];
}

function keyUsageLines(usage: KeyUsage, positions: number[]): string[] {
  const lines = [
    "token rows by key:",
    ...usage.perKey.map(({ keyId, rows }, index) => {
      const variable = index === 0 ? "ENCRYPTION_KEY" : `PREVIOUS_ENCRYPTION_KEYS ${positions[index - 1]}`;
      return row(`${keyId}  ${variable}`, rows);
    }),
    row("under no key of the ring", usage.unknown),
  ];
  if (usage.legacy > 0) lines.push(`  (${count(usage.legacy)} without a stored key id, matched by signature)`);
  if (usage.unknown > 0) {
    lines.push(
      `warning: ${count(usage.unknown)} token row${usage.unknown === 1 ? " is" : "s are"} under no key of the ring ` +
        "and cannot be decrypted: wrong ENCRYPTION_KEY, or a key missing from PREVIOUS_ENCRYPTION_KEYS?",
    );
  }
  return lines;
}

function row(label: string, rows: number): string {
  return `  ${label.padEnd(46)}${count(rows).padStart(10)}`;
}
