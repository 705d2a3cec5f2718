import { join } from "node:path";
import { ConfigError } from "../app/config.ts";
import { portFrom } from "../app/config.ts";
import { buildLocalServer, type LocalServer } from "../app/server.ts";
import { describeConnectionError } from "../db/connection-error.ts";
import type { Database } from "../db/database.ts";
import { applyMigrationsAtomically, MigrationError, readMigrations } from "../db/migrations.ts";
import { dataDirFrom, DatabaseConfigError, databaseTarget, describeTarget, type DatabaseTarget, openDatabase } from "../db/open.ts";
import { bootstrapUnlessSupabase } from "../db/supabase-bootstrap.ts";
import { type AuthEmulator, startAuthEmulator } from "./auth-emulator.ts";
import { devEncryptionKey, ensureWritableDir } from "./data-dir.ts";
import { LocalStackError } from "./errors.ts";
import { assertPortFree } from "./ports.ts";

const DEFAULT_PROJECT_ID = "demo-dms";
export const DEFAULT_EMULATOR_HOST = "127.0.0.1:9099";
export const HOST = "127.0.0.1";
// A server that stops answering must not hang npm start: connecting, then the whole migration
// transaction, are bounded (generously: this is every migration at once).
const CONNECT_TIMEOUT_S = 5;
const MIGRATION_DEADLINE_MS = 120_000;

export interface LocalStack extends LocalServer {
  port: number;
  database: DatabaseTarget;
  /** The emulator takes seconds to start; the functions can serve before it is ready. */
  emulator: Promise<AuthEmulator>;
  /** Lines for the person who ran `npm start`: warnings first. */
  notices: string[];
  close(): Promise<void>;
}

/**
 * `npm start`: migrations applied to the embedded PGlite (or DATABASE_URL), the Firebase Auth
 * emulator started, and every function built in emulator mode. The caller serves the handler.
 */
export async function startLocalStack(env: Record<string, string | undefined>): Promise<LocalStack> {
  const database = target(env);
  const port = portFrom(env);
  const dataDir = dataDirFrom(env);
  const projectId = env.FIREBASE_PROJECT_ID?.trim() || DEFAULT_PROJECT_ID;
  const [emulatorHost, emulatorPort] = hostAndPort(env.FIREBASE_AUTH_EMULATOR_HOST?.trim() || DEFAULT_EMULATOR_HOST);
  if (port === null) throw new LocalStackError("PORT is not a port number");
  await assertPortFree(HOST, port, "the functions server", "PORT");
  await assertPortFree(emulatorHost, emulatorPort, "the Firebase Auth emulator", "FIREBASE_AUTH_EMULATOR_HOST");
  await ensureWritableDir(dataDir);

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
  // The embedded database is opened once and served as it is; a server's is migrated over a
  // connection of its own and then served by the pool the functions build, with their deadlines.
  let db: Database | undefined;
  try {
    db = await openMigrated(database);
  } catch (error) {
    await stopEmulator();
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
    const server = await buildLocalServer(
      {
        ...env,
        FIREBASE_PROJECT_ID: projectId,
        FIREBASE_AUTH_EMULATOR_HOST: `${emulatorHost}:${emulatorPort}`,
        ENCRYPTION_KEY: encryptionKey,
      },
      undefined,
      db,
    );
    const served = server.deps.db;
    return {
      ...server,
      port,
      database,
      emulator,
      notices,
      close: async () => {
        await served.close();
        await stopEmulator();
      },
    };
  } catch (error) {
    await Promise.allSettled([db?.close(), stopEmulator()]);
    throw error instanceof ConfigError ? new LocalStackError(error.problems.join("; ")) : error;
  }
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
 * The database, given what a Supabase database has before migrations when it lacks it, migrated;
 * all of that in one transaction, so a migration the database refuses leaves it as it was.
 */
/**
 * Applies the migrations (with the Supabase bootstrap where it is missing). Returns the embedded
 * database, open; a server's connection is closed again (undefined), so that the functions serve it
 * from their own pool, bounded as deployed functions are.
 */
async function openMigrated(database: DatabaseTarget): Promise<Database | undefined> {
  let db: Database;
  try {
    db = await openDatabase(database, { create: true, max: 1, connectTimeout: CONNECT_TIMEOUT_S, deadlineMs: MIGRATION_DEADLINE_MS });
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new LocalStackError(error.message);
    throw error;
  }
  try {
    await applyMigrationsAtomically(db, await readMigrations(), bootstrapUnlessSupabase);
    if (database.kind === "embedded") return db;
    await db.close();
    return undefined;
  } catch (error) {
    await db.close().catch(() => {});
    if (error instanceof MigrationError) throw new LocalStackError(`${describeTarget(database)}: ${error.message}`);
    if (database.kind === "postgres") throw new LocalStackError(describeConnectionError(error, database.url));
    throw error;
  }
}
