import { KeyRingConfigError, loadKeyRing } from "../crypto/key-ring.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database } from "../db/database.ts";
import { databaseTarget, openDatabase } from "../db/open.ts";
import type { DatabaseTarget } from "../db/open.ts";
import { count } from "./count.ts";
import { withDeadline } from "./deadline.ts";
import { errorLine } from "./error-line.ts";
import { DEFAULT_BATCH_SIZE, rotateTokens } from "./keys-rotate.ts";
import type { RotationSummary } from "./keys-rotate.ts";
import { parseCommandLine, UsageError } from "./command-line.ts";
import type { CommandLine, FlagSpec } from "./command-line.ts";
import { progressReporter } from "./progress.ts";
import type { ProgressSink } from "./progress.ts";

export interface RotateIo {
  log(line: string): void;
  error(line: string): void;
  /** Where the progress goes (stderr), and whether a person watches it on a terminal. */
  progress: ProgressSink;
}

interface RotateArgs {
  dryRun: boolean;
  batchSize: number;
  /** The npm variables flags were taken from (npm_config_dry_run), to say so. */
  fromNpm: string[];
}

const USAGE = "usage: npm run keys:rotate -- [--dry-run] [--batch-size N]";
const CONNECT_TIMEOUT_S = 5;
// No statement of an operator command may hang on a database that stopped answering; a minute is
// far more than any of its statements or batch transactions needs.
const STATEMENT_DEADLINE_MS = 60_000;
const MAX_BATCH_SIZE = 10_000;
// Enough ids for a person to look a few rows up; past that the cause is a wrong key, not the rows.
const MAX_IDS_SHOWN = 1000;

/**
 * `npm run keys:rotate`: 0 when every token is under ENCRYPTION_KEY; 1 when some row could not be
 * decrypted, or some were still busy (run again: dropping the old key now would lose them), or on a
 * configuration or database error; 2 on bad usage. `argv` are the script's arguments; `env` also
 * supplies the flags npm kept for itself (`npm run keys:rotate --dry-run`, see command-line.ts).
 */
export async function runKeysRotate(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  io: RotateIo,
): Promise<number> {
  const args = parseArgs(argv, env);
  if (typeof args === "string") {
    io.error(`keys:rotate: ${args} (${USAGE})`);
    return 2;
  }

  let ring: KeyRing;
  try {
    ring = await loadKeyRing(env);
  } catch (error) {
    if (!(error instanceof KeyRingConfigError)) throw error;
    io.error(`keys:rotate failed: ${error.message}`);
    return 1;
  }

  let target: DatabaseTarget | undefined;
  let db: Database | undefined;
  const progress = progressReporter(io.progress);
  try {
    target = databaseTarget(env);
    db = await openDatabase(target, { max: 2, connectTimeout: CONNECT_TIMEOUT_S, deadlineMs: STATEMENT_DEADLINE_MS });
    // Nothing is said until the database answers, so a bad connection is one line and nothing else.
    await withDeadline(db.query("SELECT 1"), (CONNECT_TIMEOUT_S + 2) * 1000);
    io.log(header(ring, args));
    const { dryRun, batchSize } = args;
    const summary = await rotateTokens(db, ring, { dryRun, batchSize, onProgress: (p) => progress.update(p) });
    progress.finish();
    for (const line of summaryLines(summary, args.dryRun)) io.log(line);
    return summary.undecryptable.length > 0 || summary.busy > 0 ? 1 : 0;
  } catch (error) {
    progress.finish();
    io.error(`keys:rotate failed: ${errorLine(error, target)}`);
    return 1;
  } finally {
    // A server that stopped answering must not keep the command from ending.
    await withDeadline(db?.close() ?? Promise.resolve(), 1000).catch(() => {});
  }
}

// Both may come from npm's configuration (`npm run keys:rotate --dry-run`, without `--`): a dry run
// only does less, and a batch size changes nothing but the pace.
const FLAGS: Record<string, FlagSpec> = {
  "dry-run": { kind: "switch", fromNpm: "honour" },
  "batch-size": { kind: "value", fromNpm: "honour" },
};

function parseArgs(argv: readonly string[], env: Record<string, string | undefined>): RotateArgs | string {
  let line: CommandLine;
  try {
    line = parseCommandLine(argv, env, FLAGS);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return error.message;
  }
  if (line.positionals.length > 0) return `unknown argument ${JSON.stringify(line.positionals[0])}`;
  const args: RotateArgs = {
    dryRun: line.flags.has("dry-run"),
    batchSize: DEFAULT_BATCH_SIZE,
    fromNpm: [...line.fromNpm.values()],
  };
  const value = line.flags.get("batch-size");
  if (value !== undefined) {
    const size = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(size >= 1 && size <= MAX_BATCH_SIZE)) return `--batch-size takes a whole number from 1 to ${MAX_BATCH_SIZE}`;
    args.batchSize = size;
  }
  return args;
}

// Flags taken from npm's configuration are named, so that one set in an .npmrc is not a mystery.
function header(ring: KeyRing, args: RotateArgs): string {
  const previous = ring.keyIds.length - 1;
  const keys = `primary key ${ring.primaryKeyId} (ENCRYPTION_KEY), ${previous} previous key${previous === 1 ? "" : "s"}`;
  const npm = args.fromNpm.length > 0 ? `; from npm's configuration: ${args.fromNpm.join(", ")}` : "";
  return `keys:rotate: ${keys}${args.dryRun ? "; dry run: nothing is written" : ""}${npm}`;
}

function summaryLines(summary: RotationSummary, dryRun: boolean): string[] {
  const lines = [
    `${dryRun ? "would rotate" : "rotated"}: ${count(summary.rotated)}`,
    `already current: ${count(summary.alreadyCurrent)}`,
  ];
  const bad = summary.undecryptable;
  if (bad.length === 0) {
    lines.push("undecryptable: 0");
  } else {
    const shown = bad.slice(0, MAX_IDS_SHOWN).join(", ");
    const more = bad.length > MAX_IDS_SHOWN ? ` and ${count(bad.length - MAX_IDS_SHOWN)} more` : "";
    lines.push(
      `undecryptable: ${count(bad.length)} (ids ${shown}${more}): under no key of the ring, ` +
        `${dryRun ? "would be " : ""}left untouched; is a previous key missing from PREVIOUS_ENCRYPTION_KEYS?`,
    );
  }
  if (!dryRun) {
    lines.push(
      summary.busy === 0
        ? "busy: 0"
        : `busy: ${count(summary.busy)}: still held by live traffic (or written under an old key meanwhile); ` +
          "run keys:rotate again",
    );
  }
  return lines;
}
