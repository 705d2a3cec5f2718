import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { connectPostgres } from "../../shared/db/postgres.ts";
import { supabaseBootstrapSql } from "../../shared/db/supabase-bootstrap.ts";
import { applyMigrations, readMigrations } from "../../shared/db/migrations.ts";
import { postgresProblem } from "./postgres-preflight.ts";
import { ADMIN_URL, ADMIN_URL_FROM_VARIABLE, databaseUrl } from "./postgres-urls.ts";

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
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
  return async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
    await admin.end();
  };
}
