import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "./database.ts";
import { connectPostgres, type PostgresOptions } from "./postgres.ts";
import { openPglite } from "./pglite.ts";
import { checkDatabaseUrl, redactUrl } from "./connection-error.ts";
import { DatabaseConfigError } from "./config-error.ts";

export type DatabaseTarget =
  | { kind: "postgres"; url: string; variable: string }
  | { kind: "embedded"; dataDir: string };

const DEFAULT_DATA_DIR = ".data/pglite";

export { DatabaseConfigError };

/** DATABASE_URL, else SUPABASE_DB_URL (Supabase sets it in every function), else the embedded one. */
export function databaseTarget(env: Record<string, string | undefined>): DatabaseTarget {
  for (const variable of ["DATABASE_URL", "SUPABASE_DB_URL"]) {
    const url = env[variable]?.trim();
    if (!url) continue;
    const problem = checkDatabaseUrl(url, variable);
    if (problem) throw new DatabaseConfigError(problem);
    return { kind: "postgres", url, variable };
  }
  return { kind: "embedded", dataDir: dataDirFrom(env) };
}

/** DMS_DATA_DIR, or the default: where the embedded database (and `npm start`'s state) lives. */
export function dataDirFrom(env: Record<string, string | undefined>): string {
  return env.DMS_DATA_DIR?.trim() || DEFAULT_DATA_DIR;
}

export function describeTarget(target: DatabaseTarget): string {
  return target.kind === "postgres"
    ? `${redactUrl(target.url)} (from ${target.variable})`
    : `embedded PGlite in ${target.dataDir}`;
}

export interface OpenOptions extends PostgresOptions {
  /** For the embedded database: create it when the directory holds none yet. */
  create?: boolean;
}

/**
 * Whether `dataDir` holds an embedded database: PGlite's own files, of which PG_VERSION is the one
 * every Postgres data directory has. A directory that merely exists (notes, a lock file left, npm
 * start's state for a DATABASE_URL) holds none.
 */
export function hasEmbeddedDatabase(dataDir: string): boolean {
  return existsSync(join(dataDir, "PG_VERSION"));
}

export async function openDatabase(target: DatabaseTarget, options: OpenOptions = {}): Promise<Database> {
  if (target.kind === "postgres") return connectPostgres(target.url, options);
  // Checked before anything is written: without `create`, a directory without one stays untouched.
  if (!options.create && !hasEmbeddedDatabase(target.dataDir)) {
    throw new DatabaseConfigError(
      `no embedded database in ${target.dataDir} yet (npm start creates it; set DATABASE_URL to use a server)`,
    );
  }
  return openPglite(target.dataDir);
}
