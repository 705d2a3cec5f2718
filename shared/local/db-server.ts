import type { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { cannotListen } from "./ports.ts";

// PGlite is one session. The socket server queues every client's messages onto it and, while one
// client has a transaction open, serves that client alone until it ends (a client that goes away
// has its transaction rolled back). The functions' pool and a developer's psql are clients alike.
// Room for the functions' pool (DATABASE_POOL_SIZE, at most 100) and a few tools beside it.
const MAX_CONNECTIONS = 120;
/** How the port check and a failed listen name this server. */
export const DATABASE_SERVER_NAME = "the embedded database's server";

export interface DatabaseServer {
  /** postgresql://postgres:postgres@host:port/postgres: any user, password and database name are accepted. */
  url: string;
  /** Stops listening and drops the connections (their open transactions are rolled back). */
  stop(): Promise<void>;
}

/**
 * Serves the embedded database to Postgres clients (psql, pg_dump, the Supabase CLI's --db-url
 * commands, database GUIs, and `npm start`'s own functions) over the Postgres protocol at
 * host:port, with `@electric-sql/pglite-socket`. Throws LocalStackError (cannotListen: one line
 * naming DMS_DB_PORT) when it cannot listen there.
 */
export async function serveDatabase(pglite: PGlite, host: string, port: number): Promise<DatabaseServer> {
  const server = new PGLiteSocketServer({ db: oneSequenceAtATime(pglite), host, port, maxConnections: MAX_CONNECTIONS });
  try {
    await server.start();
  } catch (error) {
    await server.stop().catch(() => {});
    throw cannotListen(error as NodeJS.ErrnoException, host, port, DATABASE_SERVER_NAME, "DMS_DB_PORT");
  }
  let stopped: Promise<void> | undefined;
  return {
    url: `postgresql://postgres:postgres@${host}:${port}/postgres`,
    stop: () => (stopped ??= server.stop()),
  };
}

// Extended-query messages that leave the session mid-sequence until the client's Sync: Parse, Bind,
// Describe, Execute, Close, Flush (https://www.postgresql.org/docs/current/protocol-flow.html).
const MID_SEQUENCE = new Set(["P", "B", "D", "E", "C", "H"].map((type) => type.charCodeAt(0)));
const SYNC = "S".charCodeAt(0);

/**
 * The socket server gives one client the session only while a transaction is open. But a query in
 * the extended protocol (what postgres.js, pgx and node-postgres send) is several messages that
 * share the session's unnamed statement and portal: another client's Parse between one client's
 * Parse and Bind would have the first run the second's statement (seen as wrong rows under load).
 * So, to the server, a client that has begun such a sequence is "in a transaction" until its Sync:
 * the server then takes only its messages, as it does for an open transaction.
 */
function oneSequenceAtATime(pglite: PGlite): PGlite {
  let midSequence = false;
  const db = {
    waitReady: pglite.waitReady,
    runExclusive: <T>(fn: () => Promise<T>) => pglite.runExclusive(fn),
    isInTransaction: () => midSequence || pglite.isInTransaction(),
    execProtocolRawStream: async (message: Uint8Array, options: Parameters<PGlite["execProtocolRawStream"]>[1]) => {
      const type = message[0]!;
      if (MID_SEQUENCE.has(type)) midSequence = true;
      else if (type === SYNC) midSequence = false;
      return await pglite.execProtocolRawStream(message, options);
    },
    // The server's one other call: ROLLBACK for a client gone mid-transaction, or mid-sequence.
    exec: (query: string) => {
      midSequence = false;
      return pglite.exec(query);
    },
  };
  return db as unknown as PGlite;
}
