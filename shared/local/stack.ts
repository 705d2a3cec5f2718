import { join } from "node:path";
import { ConfigError } from "../app/config.ts";
import { dbPortFrom, portFrom } from "../app/config.ts";
import { buildLocalServer, functionUrls } from "../app/server.ts";
import { describeConnectionError } from "../db/connection-error.ts";
import { lockDataDir } from "../db/data-dir-lock.ts";
import type { Database } from "../db/database.ts";
import { applyMigrationsAtomically, MigrationError, readMigrations } from "../db/migrations.ts";
import { dataDirFrom, DatabaseConfigError, databaseTarget, describeTarget, type DatabaseTarget, openDatabase } from "../db/open.ts";
import { openPglite, type PgliteDatabase } from "../db/pglite.ts";
import { bootstrapUnlessSupabase } from "../db/supabase-bootstrap.ts";
import { type AuthEmulator, startAuthEmulator } from "./auth-emulator.ts";
import { devEncryptionKey, ensureWritableDir } from "./data-dir.ts";
import { DATABASE_SERVER_NAME, type DatabaseServer, serveDatabase } from "./db-server.ts";
import { LocalStackError, StoppedWhileStarting } from "./errors.ts";
import { assertPortFree } from "./ports.ts";

const DEFAULT_PROJECT_ID = "demo-dms";
export const DEFAULT_EMULATOR_HOST = "127.0.0.1:9099";
export const HOST = "127.0.0.1";
// A server that stops answering must not hang npm start: connecting, then the whole migration
// transaction, are bounded (generously: this is every migration at once). The connection is proved
// first, within seconds, so that a server that takes connections and drops them (or never answers)
// is told in one line at once, not after the migrations' deadline.
const CONNECT_TIMEOUT_S = 5;
const PROBE_DEADLINE_MS = 5_000;
const MIGRATION_DEADLINE_MS = 120_000;
/** Held in the data directory by the `npm start` using it (the embedded database has its own lock). */
export const START_LOCK_FILE = "dms-start.lock";
// A server notices that its client is gone only when it next reads from or writes to it; with this
// setting (Postgres 14+) it also looks every second while a statement runs or waits for a lock. So
// the migrations of an `npm start` stopped while they wait are rolled back within a second, instead
// of keeping their place in the lock queue, and then running, until they get the lock. Servers
// without the setting are left as they are.
const CHECK_CLIENT_SQL =
  "SELECT set_config(name, '1000', false) FROM pg_settings WHERE name = 'client_connection_check_interval'";

/** How the functions are served: in this process (the default), or reloaded on change. */
export type ServeFunctions = (env: Record<string, string | undefined>) => Promise<ServedFunctions>;

export interface ServedFunctions {
  handler: (request: Request) => Promise<Response>;
  close(): Promise<void>;
}

export interface LocalStack extends ServedFunctions {
  /** Lines telling a person where everything is. */
  banner(origin: string): string[];
  projectId: string;
  port: number;
  database: DatabaseTarget;
  /** Where Postgres clients reach the embedded database; undefined for a DATABASE_URL. */
  databaseUrl?: string;
  /** The emulator takes seconds to start; the functions can serve before it is ready. */
  emulator: Promise<AuthEmulator>;
  /** Lines for the person who ran `npm start`: warnings first. */
  notices: string[];
  close(): Promise<void>;
}

/**
 * `npm start`: migrations applied to the embedded PGlite (or DATABASE_URL), the Firebase Auth
 * emulator started, and every function built in emulator mode. The caller serves the handler.
 *
 * First of all, before anything is started or written, it takes the data directory for itself
 * (`dms-start.lock`, also for a DATABASE_URL: the emulator's accounts and configuration live there),
 * so a second `npm start` on it is refused in one line and touches nothing of the first's.
 *
 * `signal` stops it while it starts (Ctrl-C): what it started is stopped, the data directory
 * released, and it rejects with StoppedWhileStarting. Migrations waiting on a server are abandoned
 * at once: they are one transaction, which the server rolls back when the connection goes.
 */
export async function startLocalStack(
  env: Record<string, string | undefined>,
  signal?: AbortSignal,
  serveFunctions: ServeFunctions = inThisProcess,
): Promise<LocalStack> {
  const database = target(env);
  const port = portFrom(env);
  const dbPort = dbPortFrom(env);
  const dataDir = dataDirFrom(env);
  const projectId = env.FIREBASE_PROJECT_ID?.trim() || DEFAULT_PROJECT_ID;
  const [emulatorHost, emulatorPort] = hostAndPort(env.FIREBASE_AUTH_EMULATOR_HOST?.trim() || DEFAULT_EMULATOR_HOST);
  if (port === null) throw new LocalStackError("PORT is not a port number");
  if (dbPort === null) throw new LocalStackError("DMS_DB_PORT is not a port number");
  await ensureWritableDir(dataDir);
  const unlock = await lockForStart(dataDir);
  let stack: LocalStack;
  try {
    stoppedYet(signal);
    await assertPortFree(HOST, port, "the functions server", "PORT");
    await assertPortFree(emulatorHost, emulatorPort, "the Firebase Auth emulator", "FIREBASE_AUTH_EMULATOR_HOST");
    if (database.kind === "embedded") await assertPortFree(HOST, dbPort, DATABASE_SERVER_NAME, "DMS_DB_PORT");
    stoppedYet(signal);
    stack = await startHolding(env, { database, port, dbPort, dataDir, projectId, emulatorHost, emulatorPort, serveFunctions }, signal);
  } catch (error) {
    await unlock();
    throw error;
  }
  return {
    ...stack,
    close: async () => {
      try {
        await stack.close();
      } finally {
        await unlock();
      }
    },
  };
}

interface Settings {
  database: DatabaseTarget;
  port: number;
  dbPort: number;
  dataDir: string;
  projectId: string;
  emulatorHost: string;
  emulatorPort: number;
  serveFunctions: ServeFunctions;
}

async function startHolding(env: Record<string, string | undefined>, settings: Settings, signal?: AbortSignal): Promise<LocalStack> {
  const { database, port, dbPort, dataDir, projectId, emulatorHost, emulatorPort, serveFunctions } = settings;
  // The emulator starts while the database opens and migrates.
  const starting = new AbortController();
  const emulator = startAuthEmulator(
    {
      host: emulatorHost,
      port: emulatorPort,
      projectId,
      accountsDir: join(dataDir, "dms-auth-emulator"),
      workDir: join(dataDir, "dms-firebase-cli"),
    },
    starting.signal,
  );
  emulator.catch(() => {}); // its failure is the caller's to report, whenever it awaits it
  const stopEmulator = async () => {
    starting.abort();
    await (await emulator.catch(() => null))?.stop();
  };
  // The embedded database is opened once, migrated, and served over the Postgres protocol; a
  // server's is migrated over a connection of its own. Either way the functions then reach it
  // through the pool they build, with their deadlines, as deployed functions reach theirs.
  let embedded: PgliteDatabase | undefined;
  let dbServer: DatabaseServer | undefined;
  const closeDatabase = async () => {
    await dbServer?.stop();
    await embedded?.close();
  };
  try {
    embedded = await openMigrated(database, signal);
    stoppedYet(signal);
    if (embedded) dbServer = await serveDatabase(embedded.pglite, HOST, dbPort);
  } catch (error) {
    await Promise.allSettled([closeDatabase(), stopEmulator()]);
    throw error;
  }
  try {
    const notices: string[] = [];
    let encryptionKey = env.ENCRYPTION_KEY;
    if (!encryptionKey?.trim()) {
      const dev = await devEncryptionKey(dataDir);
      encryptionKey = dev.key;
      notices.push(
        `warning: ENCRYPTION_KEY is not set: using the development key in ${dev.path}${dev.created ? " (just created)" : ""}; ` +
          "for development only, never for real tokens",
      );
    }
    const functions = await serveFunctions({
      ...env,
      FIREBASE_PROJECT_ID: projectId,
      FIREBASE_AUTH_EMULATOR_HOST: `${emulatorHost}:${emulatorPort}`,
      ENCRYPTION_KEY: encryptionKey,
      ...(dbServer ? { DATABASE_URL: dbServer.url } : {}),
    });
    return {
      handler: functions.handler,
      banner: functionUrls,
      projectId,
      port,
      database,
      databaseUrl: dbServer?.url,
      emulator,
      notices,
      close: async () => {
        await functions.close();
        await closeDatabase();
        await stopEmulator();
      },
    };
  } catch (error) {
    await Promise.allSettled([closeDatabase(), stopEmulator()]);
    throw error instanceof ConfigError ? new LocalStackError(error.problems.join("; ")) : error;
  }
}

/** Every function in this process, sharing one pool: `npm start` without --watch. */
async function inThisProcess(env: Record<string, string | undefined>): Promise<ServedFunctions> {
  const server = await buildLocalServer(env);
  return { handler: server.handler, close: () => server.deps.db.close() };
}

/** One `npm start` per data directory; the refusal names the one holding it. Released once. */
async function lockForStart(dataDir: string): Promise<() => Promise<void>> {
  try {
    const release = await lockDataDir(dataDir, {
      file: START_LOCK_FILE,
      inUse: (holder) =>
        `the data directory ${dataDir} is in use by ${holder} (another npm start); stop it first, ` +
        "or give this one a data directory of its own with DMS_DATA_DIR",
    });
    let released: Promise<void> | undefined;
    return () => (released ??= release());
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new LocalStackError(error.message);
    throw error;
  }
}

function stoppedYet(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StoppedWhileStarting();
}

function target(env: Record<string, string | undefined>): DatabaseTarget {
  try {
    return databaseTarget(env);
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new LocalStackError(error.message);
    throw error;
  }
}

function hostAndPort(address: string): [string, number] {
  const match = /^([^:]+):(\d{1,5})$/.exec(address);
  if (!match) throw new LocalStackError("FIREBASE_AUTH_EMULATOR_HOST must be host:port, e.g. 127.0.0.1:9099");
  return [match[1]!, Number(match[2])];
}

/**
 * Applies the migrations, with the Supabase bootstrap where it is missing, all of it in one
 * transaction, so a migration the database refuses leaves it as it was. Returns the embedded
 * database, open; a server's connection is closed again (undefined), so that the functions serve it
 * from their own pool, bounded as deployed functions are.
 */
async function openMigrated(database: DatabaseTarget, signal?: AbortSignal): Promise<PgliteDatabase | undefined> {
  const migrations = await readMigrations();
  try {
    if (database.kind === "embedded") {
      // In this process and seconds long: left to finish when signalled, so its files close cleanly.
      const db = await openPglite(database.dataDir);
      try {
        await applyMigrationsAtomically(db, migrations, bootstrapUnlessSupabase);
        return db;
      } catch (error) {
        await db.close().catch(() => {});
        throw error;
      }
    }
    await onServer(database, PROBE_DEADLINE_MS, signal, (db) => db.query("SELECT 1"));
    await onServer(database, MIGRATION_DEADLINE_MS, signal, async (db) => {
      await db.query(CHECK_CLIENT_SQL);
      await applyMigrationsAtomically(db, migrations, bootstrapUnlessSupabase);
    });
    return undefined;
  } catch (error) {
    if (error instanceof StoppedWhileStarting) throw error;
    if (error instanceof DatabaseConfigError) throw new LocalStackError(error.message);
    if (error instanceof MigrationError) throw new LocalStackError(`${describeTarget(database)}: ${error.message}`);
    if (database.kind === "postgres") throw new LocalStackError(describeConnectionError(error, database.url));
    throw error;
  }
}

/**
 * `work` over a connection of its own to the server, within `deadlineMs`, closed afterwards. When
 * it fails or `signal` comes, the connection is dropped without waiting for what runs on it: the
 * server rolls an open transaction back.
 */
async function onServer<T>(
  database: DatabaseTarget,
  deadlineMs: number,
  signal: AbortSignal | undefined,
  work: (db: Database) => Promise<T>,
): Promise<T> {
  const db = await openDatabase(database, { max: 1, connectTimeout: CONNECT_TIMEOUT_S, deadlineMs });
  const running = work(db);
  running.catch(() => {}); // abandoned when signalled: its end is nobody's concern
  try {
    const result = await untilAborted(running, signal);
    await db.close();
    return result;
  } catch (error) {
    db.close().catch(() => {});
    throw error;
  }
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new StoppedWhileStarting());
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
