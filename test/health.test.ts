import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMigrations } from "../shared/db/migrations.ts";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import { CONTRACT_ALLOWED_HEADERS } from "./support/contract-helpers.ts";
import { SHIPPED_MIGRATIONS } from "../shared/db/shipped-migrations.ts";
import { emptyPostgres, migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { closedPort } from "./support/fake-postgres.ts";

describe("GET /health", () => {
  let backend: TestBackend;
  beforeAll(async () => (backend = await startTestBackend()));
  afterAll(() => backend.close());

  it("answers 200 {status: ok, database: ok, schema_version: <newest migration>}", async () => {
    const { status, body } = await backend.call("health");
    expect(status).toBe(200);
    const newest = (await readMigrations()).at(-1)!.version;
    expect(body).toEqual({ status: "ok", database: "ok", schema_version: newest });
  });

  it("needs no Authorization header", async () => {
    const { status } = await backend.call("health", { headers: {} });
    expect(status).toBe(200);
  });

  it("ignores an invalid Authorization header", async () => {
    const { status } = await backend.call("health", { headers: { authorization: "Bearer not-a-token" } });
    expect(status).toBe(200);
  });

  it("answers JSON", async () => {
    const { headers } = await backend.call("health");
    expect(headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("carries x-request-id and CORS headers", async () => {
    const { headers } = await backend.call("health", { headers: { "x-request-id": "health-check-1" } });
    expect(headers.get("x-request-id")).toBe("health-check-1");
    expect(headers.get("access-control-allow-origin")).toBe("*");
    expect(headers.get("access-control-allow-headers")).toBe(CONTRACT_ALLOWED_HEADERS);
  });

  it("answers POST with 405 method_not_allowed and an Allow header naming GET", async () => {
    const { status, headers, body } = await backend.call("health", { method: "POST" });
    expect(status).toBe(405);
    expect(body.error).toBe("method_not_allowed");
    expect(headers.get("allow")?.split(/,\s*/)).toContain("GET");
  });
});

describe("GET /health with the database down", () => {
  let backend: TestBackend;
  beforeAll(async () => {
    backend = await startTestBackend({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${await closedPort()}/postgres?sslmode=disable` });
  });
  afterAll(() => backend.close());

  it("answers 503 {status: unavailable, database: unreachable}", async () => {
    const { status, body } = await backend.call("health");
    expect(status).toBe(503);
    expect(body).toMatchObject({ status: "unavailable", database: "unreachable" });
  });

  it("answers 503 database_unavailable on the other endpoints", async () => {
    const token = await backend.token("down-uid");
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(503);
    expect(body.error).toBe("database_unavailable");
  });
});

describe("GET /health on a database without the schema this code ships", () => {
  it("knows every migration of supabase/migrations (add a new one to shared/db/shipped-migrations.ts)", async () => {
    expect(SHIPPED_MIGRATIONS).toEqual((await readMigrations()).map((m) => m.version));
  });

  const onDatabase = async (database: TestDatabase, check: (backend: TestBackend) => Promise<void>) => {
    const backend = await startTestBackend({ DATABASE_URL: database.url });
    try {
      await check(backend);
    } finally {
      await backend.close();
      await database.drop();
    }
  };

  it("answers 503 schema: missing when no migration was ever applied", async () => {
    await onDatabase(await emptyPostgres(), async (backend) => {
      const { status, body } = await backend.call("health");
      expect(status).toBe(503);
      expect(body).toMatchObject({ status: "unavailable", database: "ok", schema: "missing", schema_version: null });
    });
  });

  it("answers 503 schema: behind when a shipped migration is not applied", async () => {
    const database = await migratedPostgres();
    const [last, previous] = [SHIPPED_MIGRATIONS.at(-1)!, SHIPPED_MIGRATIONS.at(-2)!];
    await database.db.query("DELETE FROM supabase_migrations.schema_migrations WHERE version = $1", [last]);
    await onDatabase(database, async (backend) => {
      const { status, body } = await backend.call("health");
      expect(status).toBe(503);
      expect(body).toMatchObject({ status: "unavailable", database: "ok", schema: "behind", schema_version: previous });
    });
  });

  it("answers 200 on a database migrated ahead of the code (the schema is pushed before the functions)", async () => {
    const database = await migratedPostgres();
    await database.db.query("INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('99991231000000', 'from_newer_code')");
    await onDatabase(database, async (backend) => {
      const { status, body } = await backend.call("health");
      expect(status).toBe(200);
      expect(body).toEqual({ status: "ok", database: "ok", schema_version: "99991231000000" });
    });
  });
});
