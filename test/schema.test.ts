import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../shared/db/database.ts";
import { ADDED_COLUMNS, ORIGINAL_COLUMNS } from "./support/original-schema.ts";
import { migratedPglite, migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { insertToken, insertUser } from "./support/rows.ts";

const backends: [string, () => Promise<{ db: Database; drop(): Promise<void> }>][] = [
  ["Postgres", migratedPostgres],
  ["PGlite", async () => {
    const db = await migratedPglite();
    return { db, drop: () => db.close() };
  }],
];

describe.each(backends)("schema on %s", (_backend, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  beforeAll(async () => ({ db, drop } = await open()));
  afterAll(() => drop());

  it.each(["users", "dexcom_tokens"] as const)("%s has every original column, unchanged", async (table) => {
    const rows = await db.query(
      `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1
       ORDER BY ordinal_position`,
      [table],
    );
    const actual = rows.map((r) => [
      r.column_name, r.data_type, r.character_maximum_length, r.is_nullable, r.column_default,
    ]);
    expect(actual).toEqual([...ORIGINAL_COLUMNS[table], ...ADDED_COLUMNS[table]]);
  });

  it.each(["firebase_uid", "email", "dexcom_user_id"])("users.%s is unique", async (column) => {
    const value = `same-${column}`;
    await insertUser(db, { [column]: value });
    await expect(insertUser(db, { [column]: value })).rejects.toMatchObject({ code: "23505" });
    const [row] = await db.query(`SELECT count(*)::int AS n FROM users WHERE ${column} = $1`, [value]);
    expect(row!.n).toBe(1);
  });

  it("deleting a user deletes its tokens", async () => {
    const userId = await insertUser(db);
    await insertToken(db, userId, { is_revoked: true });
    await insertToken(db, userId);
    await db.query("DELETE FROM users WHERE id = $1", [userId]);
    const [row] = await db.query("SELECT count(*)::int AS n FROM dexcom_tokens WHERE user_id = $1", [userId]);
    expect(row!.n).toBe(0);
  });

  it("allows one active token per user, however many revoked ones", async () => {
    const userId = await insertUser(db);
    await insertToken(db, userId, { is_revoked: true });
    await insertToken(db, userId, { is_revoked: true });
    await insertToken(db, userId);
    await expect(insertToken(db, userId)).rejects.toMatchObject({ code: "23505" });
    // A NULL is_revoked (old data) counts as active too.
    await expect(insertToken(db, userId, { is_revoked: null })).rejects.toMatchObject({ code: "23505" });
    const other = await insertUser(db);
    await insertToken(db, other);
  });

  it("keeps updated_at current on update", async () => {
    const userId = await insertUser(db);
    const tokenId = await insertToken(db, userId);
    await db.query("UPDATE users SET updated_at = '2000-01-01Z' WHERE id = $1", [userId]);
    await db.query("UPDATE users SET email = NULL WHERE id = $1", [userId]);
    await db.query("UPDATE dexcom_tokens SET scope = 'offline_access egv' WHERE id = $1", [tokenId]);
    const [user] = await db.query<{ age: number }>(
      "SELECT extract(epoch FROM now() - updated_at)::float8 AS age FROM users WHERE id = $1",
      [userId],
    );
    const [token] = await db.query<{ changed: boolean }>(
      "SELECT updated_at >= created_at AND updated_at > '2001-01-01Z' AS changed FROM dexcom_tokens WHERE id = $1",
      [tokenId],
    );
    expect(user!.age).toBeLessThan(3600);
    expect(token!.changed).toBe(true);
  });

  it("has row level security on both tables", async () => {
    const rows = await db.query(
      "SELECT relname, relrowsecurity FROM pg_class WHERE oid IN ('public.users'::regclass, 'public.dexcom_tokens'::regclass) ORDER BY relname",
    );
    expect(rows).toEqual([
      { relname: "dexcom_tokens", relrowsecurity: true },
      { relname: "users", relrowsecurity: true },
    ]);
  });

  const statements: [string, string][] = [
    ["select users", "SELECT * FROM users"],
    ["insert users", "INSERT INTO users (email) VALUES ('intruder@example.com')"],
    ["update users", "UPDATE users SET is_active = false"],
    ["delete users", "DELETE FROM users"],
    ["select dexcom_tokens", "SELECT * FROM dexcom_tokens"],
    ["insert dexcom_tokens", "INSERT INTO dexcom_tokens (access_token_encrypted, refresh_token_encrypted, expires_in, expires_at) VALUES ('a', 'r', 1, now())"],
    ["update dexcom_tokens", "UPDATE dexcom_tokens SET is_revoked = true"],
    ["delete dexcom_tokens", "DELETE FROM dexcom_tokens"],
  ];
  const asRole = (role: string, sql: string) =>
    db.transaction(async (tx) => {
      await tx.exec(`SET LOCAL ROLE ${role}`);
      return tx.query(sql);
    });

  describe.each(["anon", "authenticated"])("as %s", (role) => {
    it.each(statements)("%s is denied", async (_name, sql) => {
      await expect(asRole(role, sql)).rejects.toMatchObject({ code: "42501" });
    });
  });

  it("keeps every table of the public schema closed to the API roles, with RLS on (tables added later too)", async () => {
    const tables = await db.query<{ name: string; rls: boolean; open: string[] }>(
      `SELECT c.relname AS name, c.relrowsecurity AS rls,
              ARRAY(SELECT r || ':' || p FROM unnest(ARRAY['anon', 'authenticated']) r,
                                              unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
                    WHERE has_table_privilege(r, c.oid, p)) AS open
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
       ORDER BY c.relname`,
    );
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining([
      "dexcom_call_budget", "dexcom_oauth_states", "dexcom_sync_state", "dexcom_token_events", "dexcom_tokens",
      "glucose_readings", "users",
    ]));
    for (const table of tables) expect({ name: table.name, rls: table.rls, open: table.open }).toEqual({ name: table.name, rls: true, open: [] });
  });

  it("keeps the backend's schema closed to the API roles", async () => {
    const [usage] = await db.query(
      "SELECT has_schema_privilege('anon', 'dms', 'USAGE') AS anon, has_schema_privilege('authenticated', 'dms', 'USAGE') AS authenticated",
    );
    expect(usage).toEqual({ anon: false, authenticated: false });
  });

  it("lets service_role read, so the denials above are about privileges", async () => {
    await expect(asRole("service_role", "SELECT count(*) FROM users")).resolves.toHaveLength(1);
  });

  it("lets service_role write users, whose email index calls dms.email_key", async () => {
    const inserted = db.transaction(async (tx) => {
      await tx.exec("SET LOCAL ROLE service_role");
      await tx.query("INSERT INTO users (email) VALUES ('ΟΔΟΣ@service-role.example')");
      await tx.query("UPDATE users SET email = 'Οδος@service-role.example' WHERE email = 'ΟΔΟΣ@service-role.example'");
      await tx.exec("RESET ROLE");
      return tx.query("SELECT email FROM users WHERE dms.email_key(email) = 'οδοσ@service-role.example'");
    });
    await expect(inserted).resolves.toEqual([{ email: "Οδος@service-role.example" }]);
    await db.query("DELETE FROM users WHERE email = 'Οδος@service-role.example'");
  });

  it("gives every function of ours a fixed search_path and no EXECUTE for the API roles", async () => {
    const functions = await db.query<{ name: string; config: string[] | null; anon: boolean; authenticated: boolean }>(
      `SELECT p.proname AS name, p.proconfig AS config,
              has_function_privilege('anon', p.oid, 'EXECUTE') AS anon,
              has_function_privilege('authenticated', p.oid, 'EXECUTE') AS authenticated
       FROM pg_proc p WHERE p.pronamespace IN ('public'::regnamespace, 'dms'::regnamespace) ORDER BY 1`,
    );
    expect(functions.map((f) => f.name)).toEqual(expect.arrayContaining(["set_updated_at", "register_user", "store_dexcom_token", "email_key"]));
    for (const fn of functions) {
      expect(fn.config?.some((setting) => setting.startsWith("search_path=")), fn.name).toBe(true);
      expect([fn.name, fn.anon, fn.authenticated]).toEqual([fn.name, false, false]);
    }
  });
});

describe("concurrency on Postgres", () => {
  let test: TestDatabase;
  beforeAll(async () => (test = await migratedPostgres()));
  afterAll(() => test.drop());

  it("50 concurrent transactions inserting an active token for one user leave exactly one", async () => {
    const userId = await insertUser(test.db);
    // Every transaction waits on this lock before inserting, so all 50 race at once.
    const gate = await test.db.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(4242) AS locked");
    expect(gate[0]!.locked).toBe(true);
    const attempts = Array.from({ length: 50 }, () =>
      test.db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock_shared(4242)");
        return insertToken(tx, userId);
      }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await test.db.query("SELECT pg_advisory_unlock_all()");
    const results = await Promise.allSettled(attempts);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(results.length - failures.length).toBe(1);
    expect(failures.map((f) => f.reason.code)).toEqual(Array(49).fill("23505"));
    const [row] = await test.db.query(
      "SELECT count(*)::int AS n FROM dexcom_tokens WHERE user_id = $1 AND is_revoked IS NOT TRUE",
      [userId],
    );
    expect(row!.n).toBe(1);
  });
});

describe("the same migrations on PGlite and on Postgres", () => {
  const shape = async (db: Database) => ({
    columns: await db.query(
      `SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name IN ('users', 'dexcom_tokens')
       ORDER BY table_name, ordinal_position`,
    ),
    indexes: await db.query(
      `SELECT tablename, indexname, indexdef FROM pg_indexes
       WHERE schemaname = 'public' AND tablename IN ('users', 'dexcom_tokens') ORDER BY indexname`,
    ),
    // Postgres 18 (PGlite) also lists NOT NULL as constraints ('n'); nullability is in the columns.
    constraints: await db.query(
      `SELECT conrelid::regclass::text AS table_name, conname, contype, pg_get_constraintdef(oid) AS definition
       FROM pg_constraint WHERE conrelid IN ('public.users'::regclass, 'public.dexcom_tokens'::regclass)
         AND contype <> 'n'
       ORDER BY conname`,
    ),
    triggers: await db.query(
      `SELECT tgrelid::regclass::text AS table_name, tgname FROM pg_trigger
       WHERE tgrelid IN ('public.users'::regclass, 'public.dexcom_tokens'::regclass) AND NOT tgisinternal
       ORDER BY tgname`,
    ),
  });

  it("produce the same columns, indexes, constraints and triggers on both tables", async () => {
    const postgres = await migratedPostgres();
    const pglite = await migratedPglite();
    try {
      const [onPostgres, onPglite] = [await shape(postgres.db), await shape(pglite)];
      expect(onPglite).toEqual(onPostgres);
      expect(onPostgres.indexes.map((i) => i.indexname)).toContain("dexcom_tokens_one_active_per_user");
      expect(onPostgres.constraints.length).toBeGreaterThanOrEqual(6);
    } finally {
      await postgres.drop();
      await pglite.close();
    }
  });
});
