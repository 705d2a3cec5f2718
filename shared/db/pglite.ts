import { PGlite } from "@electric-sql/pglite";
import type { Database, Queryable } from "./database.ts";

/** The embedded database: in memory without a directory, persisted in it otherwise. */
export async function openPglite(dataDir?: string): Promise<Database> {
  const pg = await PGlite.create(dataDir);
  return pgliteDatabase(pg);
}

export function pgliteDatabase(pg: PGlite): Database {
  const queryable = (run: Pick<PGlite, "query" | "exec">): Queryable => ({
    query: async <T>(text: string, params: readonly unknown[] = []) =>
      (await run.query<T>(text, params as unknown[])).rows,
    exec: async (script: string) => {
      await run.exec(script);
    },
  });
  return {
    ...queryable(pg),
    transaction: (fn) => pg.transaction((tx) => fn(queryable(tx))),
    close: () => pg.close(),
  };
}
