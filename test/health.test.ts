import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMigrations } from "../shared/db/migrations.ts";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import { CONTRACT_ALLOWED_HEADERS } from "./support/contract-helpers.ts";
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
