import postgres from "postgres";
import type { Database, Queryable } from "./database.ts";

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** Seconds to wait for a connection before failing, so a down database answers quickly. */
  connectTimeout?: number;
}

// prepare: false keeps us compatible with Supabase's transaction pooler (port 6543), which cannot
// keep named prepared statements across transactions.
export function connectPostgres(url: string, options: PostgresOptions = {}): Database {
  const sql = postgres(url, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeout ?? 5,
    prepare: false,
    onnotice: () => {},
  });
  const queryable = (run: postgres.Sql | postgres.TransactionSql): Queryable => ({
    query: async <T>(text: string, params: readonly unknown[] = []) =>
      (await run.unsafe(text, params as postgres.ParameterOrJSON<never>[])) as unknown as T[],
    exec: async (script: string) => {
      await run.unsafe(script);
    },
  });
  return {
    ...queryable(sql),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      sql.begin((tx) => fn(queryable(tx))) as Promise<T>,
    close: () => sql.end({ timeout: 5 }),
  };
}
