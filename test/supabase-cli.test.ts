import { afterEach, describe, expect, it } from "vitest";
import { supabaseBootstrapSql } from "../shared/db/supabase-bootstrap.ts";
import { appliedVersions, readMigrations } from "../shared/db/migrations.ts";
import { emptyPostgres, migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { insertToken, insertUser } from "./support/rows.ts";
import { supabase } from "./support/supabase-cli.ts";

const migrations = await readMigrations();
const versions = migrations.map((m) => m.version);

let databases: TestDatabase[] = [];
afterEach(async () => {
  await Promise.all(databases.map((d) => d.drop()));
  databases = [];
});

async function bootstrapped(): Promise<TestDatabase> {
  const test = await emptyPostgres();
  databases.push(test);
  await test.db.exec(supabaseBootstrapSql);
  return test;
}

async function expectCli(...args: string[]): Promise<string> {
  const result = await supabase(...args);
  expect(result.code, result.output).toBe(0);
  return result.output;
}

async function activeTokenGuard(test: TestDatabase): Promise<void> {
  const userId = await insertUser(test.db);
  await insertToken(test.db, userId);
  await expect(insertToken(test.db, userId)).rejects.toMatchObject({ code: "23505" });
}

describe("the real Supabase CLI", () => {
  it("pushes every migration, takes the last one down, and pushes it again", async () => {
    const test = await bootstrapped();
    await expectCli("db", "push", "--db-url", test.url);
    expect(await appliedVersions(test.db)).toEqual(versions);
    await activeTokenGuard(test);

    await expectCli("migration", "down", "--last", "1", "--db-url", test.url);
    expect(await appliedVersions(test.db)).toEqual(versions.slice(0, -1));

    await expectCli("db", "push", "--db-url", test.url);
    expect(await appliedVersions(test.db)).toEqual(versions);
    await activeTokenGuard(test);
    const [rls] = await test.db.query(
      "SELECT bool_and(relrowsecurity) AS on FROM pg_class WHERE oid IN ('public.users'::regclass, 'public.dexcom_tokens'::regclass)",
    );
    expect(rls!.on).toBe(true);
  });

  it("finds nothing to push on a database our own migrator brought up to date", async () => {
    const test = await migratedPostgres();
    databases.push(test);
    const output = await expectCli("db", "push", "--dry-run", "--db-url", test.url);
    expect(output).toContain("Remote database is up to date");
    const list = await expectCli("migration", "list", "--db-url", test.url);
    for (const version of versions) expect(list).toMatch(new RegExp(`${version}\\S*\\s*\\|\\s*\\S*${version}`));
  });

  it("adopts a database made by the Python backend without losing a row", async () => {
    const test = await bootstrapped();
    // The original DDL exactly as the Python backend ran it, plus Alembic's table, with data.
    await test.db.exec(migrations[0]!.sql);
    await test.db.exec("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('a1b2c3')");
    const alice = await insertUser(test.db, { email: "alice@example.com" });
    const bob = await insertUser(test.db, { firebase_uid: null, email: "bob@example.com" });
    const older = await insertToken(test.db, alice, { created_at: "2025-01-01T00:00:00Z" });
    const newer = await insertToken(test.db, alice, { created_at: "2025-06-01T00:00:00Z" });
    const bobs = await insertToken(test.db, bob, { is_revoked: null });

    await expectCli("migration", "repair", "--status", "applied", versions[0]!, "--db-url", test.url);
    await expectCli("db", "push", "--db-url", test.url);

    expect(await appliedVersions(test.db)).toEqual(versions);
    const users = await test.db.query("SELECT id, email FROM users ORDER BY id");
    expect(users).toEqual([{ id: alice, email: "alice@example.com" }, { id: bob, email: "bob@example.com" }]);
    const tokens = await test.db.query(
      "SELECT id, is_revoked, revoked_at IS NOT NULL AS has_revoked_at FROM dexcom_tokens ORDER BY id",
    );
    expect(tokens).toEqual([
      { id: older, is_revoked: true, has_revoked_at: true },
      { id: newer, is_revoked: false, has_revoked_at: false },
      { id: bobs, is_revoked: null, has_revoked_at: false },
    ]);
    const [alembic] = await test.db.query(
      "SELECT relrowsecurity AS rls, has_table_privilege('anon', oid, 'SELECT') AS anon FROM pg_class WHERE oid = 'public.alembic_version'::regclass",
    );
    expect(alembic).toEqual({ rls: true, anon: false });
  });

  it("advisors report nothing on the migrated schema, and do catch an exposed table", async () => {
    const test = await migratedPostgres();
    databases.push(test);
    await expectCli("db", "advisors", "--db-url", test.url, "--type", "all", "--fail-on", "warn");

    await test.db.exec("CREATE TABLE public.exposed (id int PRIMARY KEY); GRANT SELECT ON public.exposed TO anon");
    const result = await supabase("db", "advisors", "--db-url", test.url, "--type", "all", "--fail-on", "warn");
    expect(result.code).not.toBe(0);
    expect(result.output).toContain("rls_disabled_in_public");
  });
});
