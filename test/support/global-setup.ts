import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { connectPostgres } from "../../shared/db/postgres.ts";
import { supabaseBootstrapSql } from "../../shared/db/supabase-bootstrap.ts";
import { applyMigrations, readMigrations } from "../../shared/db/migrations.ts";
import { dropRunDatabases } from "./databases.ts";
import { postgresProblem } from "./postgres-preflight.ts";
import { killRunProcesses } from "./processes.ts";
import { ADMIN_URL, ADMIN_URL_FROM_VARIABLE, databaseUrl } from "./postgres-urls.ts";

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
    /** Lowercase letters and digits; in the name of every database and process of this run. */
    testRunId: string;
    /** A temporary directory of this run's own (data directories...), removed at its end. */
    testRunDir: string;
  }
}

// One migrated template per run; every test file copies it (CREATE DATABASE ... TEMPLATE), which
// is much faster than migrating again and gives each file a database of its own.
export default async function setup(project: TestProject) {
  const problem = await postgresProblem(ADMIN_URL, ADMIN_URL_FROM_VARIABLE);
  if (problem !== null) {
    // Thrown, it would reach the person as vitest's "Unhandled Error" with a stack trace and a
    // misleading "No test files found"; the one line that says what to do is all they need.
    process.stderr.write(`${problem}\n`);
    process.exit(1);
  }
  const template = `dms_template_${process.pid}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${template}`);
    await admin.unsafe(`CREATE DATABASE ${template}`);
  } catch (error) {
    await admin.end();
    throw new Error(`cannot create the test template database at ${ADMIN_URL}: ${error}`);
  }
  const db = connectPostgres(databaseUrl(template), { max: 1 });
  try {
    await db.exec(supabaseBootstrapSql);
    await applyMigrations(db, await readMigrations());
  } finally {
    await db.close();
  }
  project.provide("templateDatabase", template);

  // Whatever a test leaves behind, failed or timed out (an `npm start`, a database, a data
  // directory), goes at the end of the run. When vitest exits without its teardown (Ctrl-C), the
  // processes and the directory still go, synchronously, on exit; the databases cannot.
  const runId = randomBytes(4).toString("hex");
  const runDir = await mkdtemp(join(tmpdir(), `dms-test-${runId}-`));
  project.provide("testRunId", runId);
  project.provide("testRunDir", runDir);
  const onExit = () => {
    killRunProcesses(runId);
    rmSync(runDir, { recursive: true, force: true });
  };
  process.on("exit", onExit);

  return async () => {
    try {
      killRunProcesses(runId); // first: they may hold the databases and the directory
      process.off("exit", onExit);
      await dropRunDatabases(runId);
      await admin.unsafe(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    } finally {
      await admin.end();
      await rm(runDir, { recursive: true, force: true });
    }
  };
}
