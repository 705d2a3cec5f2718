import type { Queryable } from "./database.ts";
import { SHIPPED_MIGRATIONS } from "./shipped-migrations.ts";

export type SchemaState =
  | { schema: "ok"; version: string }
  | { schema: "missing"; version: null }
  | { schema: "behind"; version: string | null };

/**
 * Whether the database has every migration this code ships, in one query: "missing" when nothing
 * was ever migrated (no history, or an empty one), "behind" when some shipped migration is not
 * applied; `version` is the newest applied. A database ahead of the code (migrated by newer code,
 * as during a deploy that pushes the schema first) is "ok": migrations only add.
 */
export async function schemaState(db: Queryable, shipped: readonly string[] = SHIPPED_MIGRATIONS): Promise<SchemaState> {
  let row: { newest: string | null; applied: number } | undefined;
  try {
    [row] = await db.query<{ newest: string | null; applied: number }>(
      `SELECT max(version) AS newest,
              count(*) FILTER (WHERE version = ANY (string_to_array($1, ',')))::int AS applied
         FROM supabase_migrations.schema_migrations`,
      [shipped.join(",")],
    );
  } catch (error) {
    // undefined_table, invalid_schema_name: nothing was ever migrated here
    if (["42P01", "3F000"].includes((error as { code?: string }).code ?? "")) return { schema: "missing", version: null };
    throw error;
  }
  if (!row?.newest) return { schema: "missing", version: null };
  if (row.applied < shipped.length) return { schema: "behind", version: row.newest };
  return { schema: "ok", version: row.newest };
}
