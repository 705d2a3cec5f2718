import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import { ADMIN_URL } from "./support/postgres-urls.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

let proxy: TcpProxy;
let backend: TestBackend;
let token: string;

// Not a speed measurement: a bound that tells "answered" from "hung until the test timed out".
const ANSWERS_WITHIN_MS = 10_000;

beforeAll(async () => {
  proxy = await startTcpProxy(Number(new URL(ADMIN_URL).port || 5432));
  // The backend reaches its database through the proxy.
  backend = await startTestBackend({}, { reachDatabaseAt: proxiedUrl });
  token = await backend.token("down-user", { email: "down@example.com" });
  expect((await backend.call("users", { method: "POST", token })).status).toBe(201);
});

afterAll(async () => {
  await backend.close();
  await proxy.close();
});

function proxiedUrl(url: string): string {
  const proxied = new URL(url);
  proxied.port = String(proxy.port);
  return proxied.toString();
}

async function timed<T>(work: Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work;
  return { result, ms: performance.now() - started };
}

describe("when the database is down", () => {
  it("answers 503 database_unavailable, and health says unreachable", async () => {
    await proxy.down();
    const health = await timed(backend.call("health"));
    expect(health.result.status).toBe(503);
    expect(health.result.body).toMatchObject({ status: "unavailable", database: "unreachable" });
    expect(health.ms).toBeLessThan(ANSWERS_WITHIN_MS);

    const user = await timed(backend.call("users", { token }));
    expect(user.result.status).toBe(503);
    expect(user.result.body).toMatchObject({ error: "database_unavailable", request_id: user.result.headers.get("x-request-id") });
    expect(user.ms).toBeLessThan(ANSWERS_WITHIN_MS);
  });

  it("answers 503 within the connect timeout when the database hangs", async () => {
    await proxy.hang();
    const user = await timed(backend.call("users", { token }));
    expect(user.result.status).toBe(503);
    expect(user.ms).toBeLessThan(ANSWERS_WITHIN_MS);
  });

  it("serves again by itself once the database is back", async () => {
    await proxy.up();
    expect((await backend.call("health")).status).toBe(200);
    const user = await backend.call("users", { token });
    expect(user.status).toBe(200);
    expect(user.body.user.firebase_uid).toBe("down-user");
  });
});
