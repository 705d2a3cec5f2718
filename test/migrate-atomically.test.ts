import { describe, expect, it } from "vitest";
import type { Database } from "../shared/db/database.ts";
import { appliedVersions, applyMigrationsAtomically, MigrationError, readMigrations } from "../shared/db/migrations.ts";
import { openPglite } from "../shared/db/pglite.ts";
import { bootstrapUnlessSupabase } from "../shared/db/supabase-bootstrap.ts";
import { emptyPostgres } from "./support/databases.ts";
import { schemaSnapshot } from "./support/schema-snapshot.ts";

const migrations = await readMigrations();

// `npm start` gives a plain database the Supabase bootstrap and then every migration; when one of
// them fails there, the person's database must be left exactly as it was.
describe.each([
  ["a plain Postgres", async () => {
    const database = await emptyPostgres();
    return { db: database.db, drop: database.drop };
  }],
  ["PGlite", async () => {
    const db = await openPglite();
    return { db, drop: () => db.close() };
  }],
])("bootstrap and migrations in one transaction, on %s", (_name, open: () => Promise<{ db: Database; drop(): Promise<void> }>) => {
  it("leave the database as it was when a migration fails", async () => {
    const { db, drop } = await open();
    try {
      // The person's own table, in the way of the first migration.
      await db.exec("CREATE TABLE public.users (id integer)");
      const before = await schemaSnapshot(db);
      await expect(applyMigrationsAtomically(db, migrations, bootstrapUnlessSupabase)).rejects.toThrow(
        /relation "users" already exists/,
      );
      const after = await schemaSnapshot(db);
      expect(after).toEqual(before);
      expect(after.schemas.some((line) => /^(auth|extensions|supabase_migrations) /.test(line))).toBe(false);
    } finally {
      await drop();
    }
  });

  it("apply every migration once, and nothing the second time", async () => {
    const { db, drop } = await open();
    try {
      expect(await applyMigrationsAtomically(db, migrations, bootstrapUnlessSupabase)).toEqual(
        migrations.map((m) => m.version),
      );
      const migrated = await schemaSnapshot(db);
      expect(await applyMigrationsAtomically(db, migrations, bootstrapUnlessSupabase)).toEqual([]);
      expect(await schemaSnapshot(db)).toEqual(migrated);
      expect(await appliedVersions(db)).toEqual(migrations.map((m) => m.version));
    } finally {
      await drop();
    }
  });

  it("refuse a database migrated by newer code, changing nothing", async () => {
    const { db, drop } = await open();
    try {
      await applyMigrationsAtomically(db, migrations.slice(0, 2), bootstrapUnlessSupabase);
      await db.query(
        "INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('29990101000000', 'future')",
      );
      const before = await schemaSnapshot(db);
      await expect(applyMigrationsAtomically(db, migrations, bootstrapUnlessSupabase)).rejects.toThrow(MigrationError);
      expect(await schemaSnapshot(db)).toEqual(before);
    } finally {
      await drop();
    }
  });
});
