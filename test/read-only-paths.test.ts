// Issue 12: a request that changes nothing writes nothing (migration
// 20261129000004_read_only_when_unchanged). A row lock is a write: SELECT ... FOR UPDATE takes a
// transaction id, stores the locker in the row's xmax (WAL, a dirty page) and makes requests for one
// user queue. So the tests look for exactly that: a transaction id (pg_current_xact_id_if_assigned
// is null until a transaction writes or locks anything), the row's xmin and xmax, and whether a
// request waits for another transaction's lock on the caller's rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database, Queryable } from "../shared/db/database.ts";
import { type CallResult } from "./support/backend.ts";
import { registeredCaller } from "./support/contract-helpers.ts";
import { migratedPglite, migratedPostgres } from "./support/databases.ts";
import { connectedCaller, type DexcomBackend, startDexcomBackend, userIdOf } from "./support/dexcom-backend.ts";
import { eventually } from "./support/processes.ts";
import { insertToken, insertUser } from "./support/rows.ts";

interface Engine {
  db: Database;
  close(): Promise<void>;
}

const engines: [string, () => Promise<Engine>][] = [
  ["Postgres", async () => {
    const database = await migratedPostgres();
    return { db: database.db, close: database.drop };
  }],
  ["PGlite", async () => {
    const db = await migratedPglite();
    return { db, close: () => db.close() };
  }],
];

/** The row's version (xmin) and its locker or deleter (xmax, "0" when none), as text. */
async function rowVersion(db: Queryable, table: string, where: string, params: unknown[]): Promise<string> {
  const rows = await db.query<{ v: string }>(`SELECT xmin::text || '/' || xmax::text AS v FROM ${table} WHERE ${where}`, params);
  if (rows.length !== 1) throw new Error(`expected one row of ${table} where ${where}, found ${rows.length}`);
  return rows[0]!.v;
}

describe.each(engines)("on %s, what a database function writes", (_name, open) => {
  let engine: Engine;
  beforeAll(async () => (engine = await open()));
  afterAll(() => engine.close());
  const db = () => engine.db;

  /** Runs fn in a transaction and says whether it wrote or locked anything (took a transaction id). */
  async function inTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<{ result: T; wrote: boolean }> {
    return db().transaction(async (tx) => {
      const result = await fn(tx);
      const [row] = await tx.query<{ xid: string | null }>("SELECT pg_current_xact_id_if_assigned()::text AS xid");
      return { result, wrote: row!.xid !== null };
    });
  }

  const register = (uid: string, email: string | null, verified = true) =>
    inTransaction(async (tx) => {
      const [row] = await tx.query<{ outcome: string; id: number; email: string | null }>(
        "SELECT outcome, id, email FROM dms.register_user($1, $2, $3)",
        [uid, email, verified],
      );
      return row!;
    });
  const userVersion = (uid: string) => rowVersion(db(), "users", "firebase_uid = $1", [uid]);

  it("the check sees writes: a first sign-in, a changed email and an adoption write", async () => {
    const created = await register("ro-writes", "ro-writes@example.com");
    expect(created).toMatchObject({ result: { outcome: "created" }, wrote: true });
    const updated = await register("ro-writes", "ro-writes-new@example.com");
    expect(updated).toMatchObject({ result: { outcome: "updated", email: "ro-writes-new@example.com" }, wrote: true });
    const legacyId = await insertUser(db(), { firebase_uid: null, email: "ro-legacy@example.com" });
    const adopted = await register("ro-adopter", "RO-Legacy@example.com");
    expect(adopted).toMatchObject({ result: { outcome: "adopted", id: legacyId }, wrote: true });
  });

  it("an unchanged sign-in writes and locks nothing: no transaction id, the row's xmin and xmax as they were", async () => {
    const created = await register("ro-steady", "ro-steady@example.com");
    const before = await userVersion("ro-steady");
    expect(before).toMatch(/\/0$/); // inserted, never locked
    for (let n = 0; n < 3; n++) {
      const again = await register("ro-steady", "ro-steady@example.com");
      expect(again).toEqual({ result: { outcome: "unchanged", id: created.result.id, email: "ro-steady@example.com" }, wrote: false });
    }
    expect(await userVersion("ro-steady")).toBe(before);
  });

  it("the same address spelt in another case is unchanged too, and writes nothing", async () => {
    await register("ro-case", "ro.case@example.com");
    const before = await userVersion("ro-case");
    expect(await register("ro-case", "RO.Case@Example.COM")).toMatchObject({ result: { outcome: "unchanged", email: "ro.case@example.com" }, wrote: false });
    expect(await register("ro-greek", "ΟΔΟΣ@ro.example.gr")).toMatchObject({ result: { outcome: "created", email: "οδοσ@ro.example.gr" }, wrote: true });
    expect(await register("ro-greek", "οδος@ro.example.gr")).toMatchObject({ result: { outcome: "unchanged", email: "οδοσ@ro.example.gr" }, wrote: false });
    expect(await userVersion("ro-case")).toBe(before);
  });

  it("a sign-in without an email, by a user stored without one, writes nothing", async () => {
    expect(await register("ro-no-email", null)).toMatchObject({ result: { outcome: "created", email: null }, wrote: true });
    expect(await register("ro-no-email", null)).toMatchObject({ result: { outcome: "unchanged", email: null }, wrote: false });
  });

  it("a deactivated user's sign-in answers user_inactive and writes nothing, even with another email", async () => {
    await register("ro-inactive", "ro-inactive@example.com");
    await db().query("UPDATE users SET is_active = false WHERE firebase_uid = 'ro-inactive'");
    const before = await userVersion("ro-inactive");
    expect(await register("ro-inactive", "ro-inactive@example.com")).toMatchObject({ result: { outcome: "user_inactive" }, wrote: false });
    expect(await register("ro-inactive", "ro-elsewhere@example.com")).toMatchObject({ result: { outcome: "user_inactive" }, wrote: false });
    expect(await userVersion("ro-inactive")).toBe(before);
  });

  it("a row from before the email rule (email not yet in its key form) is still rewritten to it", async () => {
    await insertUser(db(), { firebase_uid: "ro-old-form", email: "Ro.Old.Form@Example.com" });
    expect(await register("ro-old-form", "ro.old.form@example.com")).toMatchObject({
      result: { outcome: "updated", email: "ro.old.form@example.com" },
      wrote: true,
    });
    expect(await register("ro-old-form", "ro.old.form@example.com")).toMatchObject({ result: { outcome: "unchanged" }, wrote: false });
  });

  it("DELETE /dexcom-tokens with nothing to revoke writes nothing; with an active token it revokes", async () => {
    const disconnect = (uid: string) =>
      inTransaction(async (tx) =>
        (await tx.query<{ found: boolean; is_active: boolean | null; revoked: number }>(
          "SELECT found, is_active, revoked FROM dms.disconnect_dexcom($1, 'ro-request')",
          [uid],
        ))[0]!
      );
    expect(await disconnect("ro-nobody")).toEqual({ result: { found: false, is_active: null, revoked: 0 }, wrote: false });

    const userId = await insertUser(db(), { firebase_uid: "ro-disconnect" });
    const before = await userVersion("ro-disconnect");
    expect(await disconnect("ro-disconnect")).toEqual({ result: { found: true, is_active: true, revoked: 0 }, wrote: false });
    expect(await userVersion("ro-disconnect")).toBe(before);

    await insertToken(db(), userId);
    expect(await disconnect("ro-disconnect")).toEqual({ result: { found: true, is_active: true, revoked: 1 }, wrote: true });
    expect(await disconnect("ro-disconnect")).toEqual({ result: { found: true, is_active: true, revoked: 0 }, wrote: false });

    await insertToken(db(), userId);
    await db().query("UPDATE users SET is_active = false WHERE id = $1", [userId]);
    expect(await disconnect("ro-disconnect")).toEqual({ result: { found: true, is_active: false, revoked: 0 }, wrote: false });
  });
});

// Only a real server has other sessions whose locks a request could wait for.
describe("on Postgres, requests that only read do not wait for another transaction's locks", () => {
  let backend: DexcomBackend;
  beforeAll(async () => (backend = await startDexcomBackend()));
  afterAll(() => backend.close());
  const db = () => backend.database.db;

  /**
   * Runs `during` while another transaction holds the FOR UPDATE locks of `locks` (each statement
   * locking at least one row, all with the parameters `params`), then commits that transaction.
   */
  async function whileLocked<T>(locks: string[], params: unknown[], during: () => Promise<T>): Promise<T> {
    return db().transaction(async (tx) => {
      for (const lock of locks) expect((await tx.query(lock, params)).length, lock).toBeGreaterThan(0);
      return during();
    });
  }
  const LOCK_USER = ["SELECT id FROM users WHERE firebase_uid = $1 FOR UPDATE"];

  /** Waits (bounded) until a session of this database waits for a lock while running SQL like `like`. */
  async function lockWaiter(like: string): Promise<boolean> {
    return eventually(async () => {
      const [row] = await db().query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE $1`,
        [like],
      );
      return row!.n > 0;
    }, 5_000);
  }

  it("dms.register_user for an unchanged user answers while the row is locked (lock_timeout 1 s)", async () => {
    await registeredCaller(backend, "ro-sql-locked");
    const outcome = await whileLocked(LOCK_USER, ["ro-sql-locked"], () =>
      db().transaction(async (tx) => {
        await tx.exec("SET LOCAL lock_timeout = '1s'");
        const [row] = await tx.query<{ outcome: string }>(
          "SELECT outcome FROM dms.register_user($1, $2, true)",
          ["ro-sql-locked", "ro-sql-locked@example.com"],
        );
        return row!.outcome;
      }));
    expect(outcome).toBe("unchanged");
  });

  it("POST /users, unchanged, answers 200 at once, 20 at a time, while the row is locked", async () => {
    const token = await registeredCaller(backend, "ro-http-locked");
    const answers = await whileLocked(LOCK_USER, ["ro-http-locked"], () =>
      Promise.all(Array.from({ length: 20 }, () => backend.call("users", { method: "POST", token }))));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    // A request waiting for the lock would have been cut off at its deadline (4 s) with 503.
    expect(new Set(answers.map((a) => a.body.user.id)).size).toBe(1);
  });

  it("POST /users with a new email still takes the lock: it waits for the holder, then updates", async () => {
    await registeredCaller(backend, "ro-mover");
    const moved = await backend.token("ro-mover", { email: "ro-mover-new@example.com" });
    let answer: Promise<CallResult> | undefined;
    let settled = false;
    await whileLocked(LOCK_USER, ["ro-mover"], async () => {
      answer = backend.call("users", { method: "POST", token: moved });
      void answer.then(() => (settled = true));
      expect(await lockWaiter("%register_user%")).toBe(true);
      expect(settled).toBe(false);
    });
    const got = await answer!;
    expect(got.status, got.text).toBe(200);
    expect(got.body.user.email).toBe("ro-mover-new@example.com");
  });

  it("DELETE /dexcom-tokens with nothing to revoke answers {revoked: 0} while the user's row is locked", async () => {
    const token = await registeredCaller(backend, "ro-disconnected");
    const answer = await whileLocked(LOCK_USER, ["ro-disconnected"], () =>
      backend.call("dexcom-tokens", { method: "DELETE", token }));
    expect([answer.status, answer.body]).toEqual([200, { revoked: 0 }]);
  });

  describe("a connected user's reads", () => {
    let token: string;
    let userId: number;
    // The caller's rows the reads look at: the user, their tokens, their sync state.
    const LOCK_ALL = [
      "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
      "SELECT 1 FROM dexcom_tokens WHERE user_id = $1 FOR UPDATE",
      "SELECT 1 FROM dexcom_sync_state WHERE user_id = $1 FOR UPDATE",
    ];

    const lastHour = () =>
      new URLSearchParams({ startDate: new Date(Date.now() - 3_600_000).toISOString(), endDate: new Date().toISOString() });
    const reads = () => [
      backend.call("users", { token }),
      backend.call("dexcom-tokens", { token }),
      backend.call("glucose-readings", { token }),
      backend.call("glucose-summary", { token }),
      backend.call("health"),
      backend.call("dexcom-egvs", { token, path: `?${lastHour()}` }),
      // The first sync (the OAuth callback's) finished under 60 s ago: answered from the sync state.
      backend.call("dexcom-sync", { method: "POST", token }),
    ];
    const expectAnswered = (answers: CallResult[]) => {
      expect(answers.map((a) => a.status), answers.map((a) => a.text).join("\n")).toEqual(Array(7).fill(200));
      expect(answers[6]!.body.sync.skipped).toBe("too_soon");
    };
    const versions = async () => ({
      user: await rowVersion(db(), "users", "id = $1", [userId]),
      tokens: (await db().query<{ v: string }>(
        "SELECT xmin::text || '/' || xmax::text AS v FROM dexcom_tokens WHERE user_id = $1 ORDER BY id",
        [userId],
      )).map((r) => r.v),
      sync: await rowVersion(db(), "dexcom_sync_state", "user_id = $1", [userId]),
    });

    beforeAll(async () => {
      ({ token } = await connectedCaller(backend, "ro-connected"));
      userId = await userIdOf(db(), "ro-connected");
    });

    it("GET /users, /dexcom-tokens, /glucose-readings, /glucose-summary, /health, /dexcom-egvs (fresh token) and a too-soon POST /dexcom-sync leave the user's, tokens' and sync state's rows as they were", async () => {
      const before = await versions();
      expect(before.tokens).toHaveLength(1);
      expectAnswered(await Promise.all(reads()));
      expect(await versions()).toEqual(before);
    });

    it("and answer while another transaction holds those rows locked (waiting would end in 503 at the 4 s deadline)", async () => {
      expectAnswered(await whileLocked(LOCK_ALL, [userId], () => Promise.all(reads())));
    });
  });
});
