import { afterAll, describe, expect, it } from "vitest";
import { openPglite } from "../shared/db/pglite.ts";
import { supabaseBootstrapSql } from "../shared/db/supabase-bootstrap.ts";
import { applyMigrations, appliedVersions, MigrationError, readMigrations } from "../shared/db/migrations.ts";
import { emptyPostgres, migratedPglite, type TestDatabase } from "./support/databases.ts";
import { insertToken, insertUser } from "./support/rows.ts";

const migrations = await readMigrations();
const versions = migrations.map((m) => m.version);

describe("the migrator", () => {
  it("reads the migrations folder oldest first", () => {
    expect(versions.length).toBeGreaterThanOrEqual(4);
    expect([...versions].sort()).toEqual(versions);
    expect(migrations[0]).toMatchObject({ version: "20261127000001", name: "initial_schema" });
  });

  it("on PGlite, resolves legacy duplicate active tokens, keeping the newest", async () => {
    const db = await openPglite();
    try {
      await db.exec(supabaseBootstrapSql);
      expect(await applyMigrations(db, migrations.slice(0, 1))).toEqual(versions.slice(0, 1));
      const userId = await insertUser(db);
      const oldest = await insertToken(db, userId, { created_at: "2024-01-01T00:00:00Z" });
      const legacyNull = await insertToken(db, userId, { is_revoked: null, created_at: "2024-02-01T00:00:00Z" });
      // Same created_at: the higher id is the newer one.
      const tieLow = await insertToken(db, userId, { created_at: "2024-03-01T00:00:00Z" });
      const tieHigh = await insertToken(db, userId, { created_at: "2024-03-01T00:00:00Z" });

      expect(await applyMigrations(db, migrations)).toEqual(versions.slice(1));

      const rows = await db.query("SELECT id, is_revoked FROM dexcom_tokens ORDER BY id");
      expect(rows).toEqual([
        { id: oldest, is_revoked: true },
        { id: legacyNull, is_revoked: true },
        { id: tieLow, is_revoked: true },
        { id: tieHigh, is_revoked: false },
      ]);
    } finally {
      await db.close();
    }
  });

  it("records history as the CLI does, applies nothing twice, and refuses a newer database", async () => {
    const db = await migratedPglite();
    try {
      expect(await applyMigrations(db, migrations)).toEqual([]);
      const history = await db.query("SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY version");
      expect(history).toEqual(migrations.map((m) => ({ version: m.version, name: m.name, statements: [m.sql] })));

      await db.query("INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('29990101000000', 'from_the_future')");
      const refused = applyMigrations(db, migrations);
      await expect(refused).rejects.toBeInstanceOf(MigrationError);
      await expect(refused).rejects.toThrow(/29990101000000/);
    } finally {
      await db.close();
    }
  });

  describe("on Postgres", () => {
    let test: TestDatabase;
    afterAll(() => test?.drop());

    it("lets two processes migrate at once, each migration applied once", async () => {
      test = await emptyPostgres();
      await test.db.exec(supabaseBootstrapSql);
      const results = await Promise.all([applyMigrations(test.db, migrations), applyMigrations(test.db, migrations)]);
      expect([...results[0], ...results[1]].sort()).toEqual(versions);
      expect(await appliedVersions(test.db)).toEqual(versions);
    });
  });
});
