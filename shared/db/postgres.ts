import postgres from "postgres";
import type { Database, Queryable } from "./database.ts";
import { builtinArrayTypes } from "./array-types.ts";
import { type PacedSocket, pacedSocket } from "./paced-socket.ts";
import { type Permits, permits } from "./permits.ts";
import { DatabaseTimeout } from "./unavailable.ts";

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** Seconds to wait for a new connection before failing, so a down database answers quickly. */
  connectTimeout?: number;
  /**
   * Milliseconds within which every operation settles (waiting for a pooled connection,
   * connecting, locks, statements; a transaction as a whole), or fails with DatabaseTimeout.
   * Unset: no deadline (migrations and operator tools, which bound themselves).
   */
  deadlineMs?: number;
}

// A statement we asked the server to cancel comes back within this, or its connection is taken
// for dead (a socket nobody answers on any more) and the pool is replaced.
const CANCEL_GRACE_MS = 1000;
// How long the queries of a replaced pool may still finish before its connections are closed.
const RETIRE_AFTER_S = 2;

interface Pool {
  sql: postgres.Sql;
  permits: Permits;
  socket: PacedSocket;
}

/** What one operation is doing when its deadline comes, which decides how it is stopped. */
interface Operation {
  expired: boolean;
  acquired: boolean;
  settled: boolean;
  /** Inside a transaction's function, between its statements: nothing to cancel. */
  inBody: boolean;
  running?: Promise<unknown>;
}

/**
 * Postgres through postgres.js, bounded so that no request can hang on the database.
 *
 * Deadlines are kept by the client, not by session settings (`SET statement_timeout` does not
 * stick behind Supabase's transaction pooler): at most `max` operations reach the driver at once
 * and the rest wait here, where a passed deadline takes them out of line before they are sent; a
 * running statement gets a cancel request (the protocol's CancelRequest, which poolers forward);
 * a statement that does not come back from that, or a connection that never becomes ready (a
 * frozen socket, a server that accepts and hangs up), has the whole pool replaced: its
 * connections are closed and new ones made, so the next request does not queue behind a dead one.
 *
 * prepare: false keeps us compatible with the transaction pooler (port 6543), which cannot keep
 * named prepared statements across transactions.
 */
export function connectPostgres(url: string, options: PostgresOptions = {}): Database {
  const max = options.max ?? 10;
  const deadlineMs = options.deadlineMs;
  const open = (socket = pacedSocket()): Pool => ({
    socket,
    sql: postgres(url, {
      max,
      connect_timeout: options.connectTimeout ?? 5,
      prepare: false,
      // The driver looks up array types on each new connection without awaiting the lookup, so an
      // error there (a pooler's XX000) would be an unhandled rejection that ends the process; we
      // use no array types of our own, and the built-in ones are declared (array-types.ts).
      fetch_types: false,
      types: builtinArrayTypes(),
      socket,
      onnotice: () => {},
    } as unknown as postgres.Options<{}>), // `socket` is a documented option its typings lack
    permits: permits(max),
  });
  let pool = open();

  const retire = (stale: Pool) => {
    if (pool !== stale) return;
    pool = open(stale.socket); // the pacing goes on: a server that hangs up keeps doing so
    stale.sql.end({ timeout: RETIRE_AFTER_S }).catch(() => {});
  };

  const stop = (op: Operation, at: Pool) => {
    if (!op.acquired || op.settled) return; // still in line: the permit queue lets it go
    const query = op.running as unknown as { active?: boolean } | undefined;
    if (query?.active) {
      at.socket.unpaced(() => cancel(op.running!));
      setTimeout(() => op.settled || retire(at), CANCEL_GRACE_MS);
    } else if (!op.inBody) {
      retire(at); // never got a ready connection, or a BEGIN/COMMIT nobody answers
    }
  };

  // Every operation gets the same deadlineMs from its start, so they come due in the order they
  // started: one timer, set for the oldest, serves them all. (A timer of each operation's own, set
  // and cleared, cost more under load than the rest of this layer together.)
  const due = new Set<{ at: number; expire(): void }>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const oldest = due.values().next().value;
    timer = oldest === undefined ? undefined : setTimeout(expireDue, Math.max(0, oldest.at - performance.now()));
  };
  const expireDue = () => {
    const now = performance.now();
    for (const entry of due) {
      if (entry.at > now) break;
      due.delete(entry);
      entry.expire();
    }
    arm();
  };

  async function bounded<T>(work: (sql: postgres.Sql, op: Operation) => Promise<T>): Promise<T> {
    const at = pool;
    const op: Operation = { expired: false, acquired: false, settled: false, inBody: false };
    if (deadlineMs === undefined) return work(at.sql, op);
    const deadline = new AbortController();
    let failed!: (reason: unknown) => void;
    const expiry = new Promise<never>((_, reject) => (failed = reject));
    expiry.catch(() => {}); // it may come while waiting for a permit, or after we are done
    const entry = {
      at: performance.now() + deadlineMs,
      expire: () => {
        op.expired = true;
        const timeout = new DatabaseTimeout(deadlineMs);
        deadline.abort(timeout); // takes it out of the permit queue, if it is still in line
        failed(timeout);
        stop(op, at);
      },
    };
    due.add(entry);
    if (timer === undefined) arm();
    try {
      const release = await at.permits.acquire(deadline.signal);
      op.acquired = true;
      const running = work(at.sql, op).finally(() => {
        op.settled = true;
        release();
      });
      running.catch(() => {}); // it may settle after we gave up on it
      return await Promise.race([running, expiry]);
    } finally {
      due.delete(entry);
      // Nothing left to watch: no timer keeps the process (a command-line tool) alive.
      if (due.size === 0 && timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
    }
  }

  const statement = async <T>(run: postgres.Sql | postgres.TransactionSql, op: Operation, text: string, params: readonly unknown[]) => {
    if (op.expired) throw new DatabaseTimeout(deadlineMs!);
    const query = run.unsafe(text, params as postgres.ParameterOrJSON<never>[]);
    op.running = query;
    try {
      return (await query) as unknown as T[];
    } finally {
      if (op.running === query) op.running = undefined;
    }
  };

  const inTransaction = (tx: postgres.TransactionSql, op: Operation): Queryable => ({
    query: <T>(text: string, params: readonly unknown[] = []) => statement<T>(tx, op, text, params),
    exec: async (script: string) => void await statement(tx, op, script, []),
  });

  return {
    query: <T>(text: string, params: readonly unknown[] = []) => bounded((sql, op) => statement<T>(sql, op, text, params)),
    exec: (script: string) => bounded(async (sql, op) => void await statement(sql, op, script, [])),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      bounded((sql, op) =>
        sql.begin(async (tx) => {
          if (op.expired) throw new DatabaseTimeout(deadlineMs!);
          op.inBody = true;
          try {
            return await fn(inTransaction(tx, op));
          } finally {
            op.inBody = false; // COMMIT or ROLLBACK follows: a hang there is the connection's
          }
        }) as Promise<T>
      ),
    close: () => pool.sql.end({ timeout: 5 }),
  };
}

// Query.cancel() drops the promise of its cancel request, so one that fails (the server is
// unreachable) would reject unhandled and end the process; the canceller is called directly to
// keep that promise and let it fail quietly.
function cancel(query: Promise<unknown>): void {
  const pending = query as unknown as { canceller?: ((query: unknown) => Promise<unknown>) | null };
  const canceller = pending.canceller;
  pending.canceller = null;
  canceller?.(query)?.catch(() => {});
}
