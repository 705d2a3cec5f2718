import { PGlite } from "@electric-sql/pglite";
import { lockDataDir } from "./data-dir-lock.ts";
import type { Database, Queryable } from "./database.ts";

/** The embedded database, with its PGlite instance (which `npm start` also serves over a socket). */
export interface PgliteDatabase extends Database {
  readonly pglite: PGlite;
}

/**
 * The embedded database: in memory without a directory, persisted in it otherwise, where this
 * process then holds it alone until it closes it or ends (lockDataDir: an operating-system lock,
 * which no dead process can keep). Throws DataDirInUse while another opener holds it.
 */
export async function openPglite(dataDir?: string): Promise<PgliteDatabase> {
  if (dataDir === undefined) return pgliteDatabase(await PGlite.create());
  const release = await lockDataDir(dataDir);
  try {
    const db = pgliteDatabase(await PGlite.create(dataDir));
    return {
      ...db,
      close: async () => {
        await db.close();
        await release();
      },
    };
  } catch (error) {
    await release();
    throw error;
  }
}

export function pgliteDatabase(pg: PGlite): PgliteDatabase {
  const queryable = (run: Pick<PGlite, "query" | "exec">): Queryable => ({
    query: async <T>(text: string, params: readonly unknown[] = []) =>
      (await run.query<T>(text, params as unknown[])).rows,
    exec: async (script: string) => {
      await run.exec(script);
    },
  });
  return {
    ...queryable(pg),
    pglite: pg,
    transaction: (fn) => pg.transaction((tx) => fn(queryable(tx))),
    close: () => pg.close(),
  };
}
