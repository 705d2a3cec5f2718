import { ConfigError } from "../app/config.ts";
import { buildDependencies } from "../app/dependencies.ts";
import { syncDueUsers } from "../glucose/due.ts";
import { DUE_RUN_MS } from "../glucose/sync-function.ts";
import type { Logger } from "../http/log.ts";
import { parseCommandLine, UsageError } from "./command-line.ts";
import { count } from "./count.ts";
import { withDeadline } from "./deadline.ts";
import { errorLine } from "./error-line.ts";
import type { ProgressSink } from "./progress.ts";

export interface DexcomSyncIo {
  log(line: string): void;
  error(line: string): void;
  /** Where the progress line goes (stderr), and whether a person watches it on a terminal. */
  progress: ProgressSink;
}

const USAGE = "usage: npm run dexcom:sync";

/**
 * `npm run dexcom:sync`: syncs every connected user whose readings are due, as
 * `POST /dexcom-sync/due` does (same module, same 50 s for starting users, same call budget), with a
 * progress line and a summary. Exit 0 when no user failed, 1 when some did or on a configuration or
 * database error, 2 on bad usage.
 */
export async function runDexcomSync(argv: readonly string[], env: Record<string, string | undefined>, io: DexcomSyncIo): Promise<number> {
  try {
    const line = parseCommandLine(argv, env, {});
    if (line.positionals.length > 0) throw new UsageError(`unknown argument ${JSON.stringify(line.positionals[0])}`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.error(`dexcom:sync: ${error.message} (${USAGE})`);
    return 2;
  }

  let deps;
  try {
    deps = await buildDependencies(env, { encryption: true }, quietLogger(io));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) io.error(`dexcom:sync failed: ${problem}`);
    return 1;
  }
  try {
    if (deps.dexcom === null) {
      io.error("dexcom:sync failed: DEXCOM_CLIENT_ID, DEXCOM_CLIENT_SECRET and DEXCOM_REDIRECT_URI are not set");
      return 1;
    }
    const summary = await syncDueUsers(
      { db: deps.db, sync: deps.dexcom.sync, logger: deps.logger },
      {
        requestId: `dexcom-sync-${crypto.randomUUID()}`,
        startUntil: Date.now() + DUE_RUN_MS,
        onUser: (sofar) => io.progress.write(progressLine(sofar, io.progress.isTTY)),
      },
    );
    if (io.progress.isTTY && summary.users > 0) io.progress.write("\n");
    io.log(
      `synced ${count(summary.users)} user${summary.users === 1 ? "" : "s"}: ${count(summary.new_readings)} new readings, ` +
        `${count(summary.failed)} failed, ${count(summary.deferred)} deferred (budget or time; the next run takes them)`,
    );
    return summary.failed > 0 ? 1 : 0;
  } catch (error) {
    io.error(`dexcom:sync failed: ${errorLine(error, deps.config.database)}`);
    return 1;
  } finally {
    await withDeadline(deps.db.close(), 1000).catch(() => {});
  }
}

function progressLine(sofar: { users: number; new_readings: number; failed: number }, tty: boolean): string {
  const text = `users ${count(sofar.users)}, new readings ${count(sofar.new_readings)}, failed ${count(sofar.failed)}`;
  return tty ? `\r${text}` : `${text}\n`;
}

// A person reads this command's output: the functions' JSON lines stay out of it, but for
// warnings, which go to stderr.
function quietLogger(io: DexcomSyncIo): Logger {
  const warn = (event: string, fields: Record<string, unknown> = {}) => io.error(JSON.stringify({ level: "warn", event, ...fields }));
  return { info: () => {}, warn, error: warn };
}
