// The one interface the code uses to reach Postgres, so that the same handlers and tools run on a
// real server (postgres.js) and on the embedded PGlite.
export type Row = Record<string, unknown>;

export interface Queryable {
  /** One statement with $1..$n parameters. */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** A script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Database extends Queryable {
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
