import type { Database, Queryable } from "./database.ts";

export interface DatabaseReport {
  server: string;
  newestMigration: { version: string; name: string | null } | null;
}

/** What `npm run db:check` prints: the server and the newest migration recorded. */
export async function inspectDatabase(db: Queryable): Promise<DatabaseReport> {
  const [server] = await db.query<{ version: string }>("SELECT version() AS version");
  return { server: server!.version, newestMigration: await newestMigration(db) };
}

// Kept apart from the migrator, whose file reading a deployed function does not need.
/** The newest migration recorded, in one query; null when there is no history (yet). */
export async function newestMigration(db: Pick<Database, "query">): Promise<{ version: string; name: string | null } | null> {
  try {
    const [row] = await db.query<{ version: string; name: string | null }>(
      "SELECT version, name FROM supabase_migrations.schema_migrations ORDER BY version DESC LIMIT 1",
    );
    return row ?? null;
  } catch (error) {
    // undefined_table, invalid_schema_name: nothing was ever migrated here
    if (["42P01", "3F000"].includes((error as { code?: string }).code ?? "")) return null;
    throw error;
  }
}
