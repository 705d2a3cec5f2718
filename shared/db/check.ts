import type { Queryable } from "./database.ts";

export interface DatabaseReport {
  server: string;
  newestMigration: { version: string; name: string | null } | null;
}

/** What `npm run db:check` prints: the server and the newest migration recorded. */
export async function inspectDatabase(db: Queryable): Promise<DatabaseReport> {
  const [server] = await db.query<{ version: string }>("SELECT version() AS version");
  const [history] = await db.query<{ present: boolean }>(
    "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL AS present",
  );
  const [newest] = history?.present
    ? await db.query<{ version: string; name: string | null }>(
      "SELECT version, name FROM supabase_migrations.schema_migrations ORDER BY version DESC LIMIT 1",
    )
    : [];
  return { server: server!.version, newestMigration: newest ?? null };
}
