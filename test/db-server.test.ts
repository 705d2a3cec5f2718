// The embedded database served over the Postgres protocol (what `npm start` opens on DMS_DB_PORT):
// many clients at once, each served as if it had the database to itself.
import { PGlite } from "@electric-sql/pglite";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DatabaseServer, serveDatabase } from "../shared/local/db-server.ts";
import { freePort } from "../shared/local/ports.ts";

let pglite: PGlite;
let server: DatabaseServer;
const clients: postgres.Sql[] = [];
const client = (max: number) => {
  const sql = postgres(server.url, { prepare: false, max, onnotice: () => {} });
  clients.push(sql);
  return sql;
};

beforeAll(async () => {
  pglite = await PGlite.create();
  await pglite.exec("CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t SELECT g, 'row' || g FROM generate_series(1, 100) g");
  server = await serveDatabase(pglite, "127.0.0.1", await freePort());
});
afterAll(async () => {
  await Promise.all(clients.map((sql) => sql.end()));
  await server.stop();
  await pglite.close();
});

describe("the embedded database's server", () => {
  it("gives every query of a pool of 10 its own statement and rows, under load", async () => {
    const sql = client(10);
    // Two statements of different shapes, interleaved: a Bind run against another client's Parse
    // fails ("bind message supplies 1 parameters, but prepared statement requires 2") or returns
    // the other's rows.
    const outcomes = await Promise.all(Array.from({ length: 2000 }, async (_, i) => {
      try {
        if (i % 2 === 1) {
          const [row] = await sql`SELECT ${i}::int AS i, ${`x${i}`}::text AS t`;
          return row!.i === i && row!.t === `x${i}` ? "right" : `wrong ${JSON.stringify(row)}`;
        }
        const id = (i % 100) + 1;
        const rows = await sql`SELECT s FROM t WHERE id = ${id}`;
        return rows.length === 1 && rows[0]!.s === `row${id}` ? "right" : `wrong ${JSON.stringify(rows)}`;
      } catch (error) {
        return `failed ${(error as Error).message}`;
      }
    }));
    expect(outcomes.filter((outcome) => outcome !== "right").slice(0, 5)).toEqual([]);
  });

  it("keeps another client out of an open transaction, and rolls back one whose client goes away", async () => {
    const a = client(1);
    const b = client(1);
    let seenByB: unknown;
    await a.begin(async (tx) => {
      await tx`INSERT INTO t VALUES (1000, 'uncommitted')`;
      // B's read waits for A's transaction to end instead of running inside it.
      const read = b`SELECT count(*)::int AS n FROM t WHERE id = 1000`.then(([row]) => (seenByB = row!.n));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(seenByB).toBeUndefined();
      await tx`UPDATE t SET s = 'committed' WHERE id = 1000`;
      void read;
    });
    await expect.poll(() => seenByB).toBe(1);

    const c = postgres(server.url, { prepare: false, max: 1, onnotice: () => {} });
    await c`BEGIN`;
    await c`INSERT INTO t VALUES (1001, 'left open')`;
    await c.end({ timeout: 0 }); // gone, its transaction open
    const [row] = await b`SELECT count(*)::int AS n FROM t WHERE id = 1001`;
    expect(row!.n).toBe(0);
  });
});
