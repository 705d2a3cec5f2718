import { createClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDmsClient, DmsApiError, type DmsClient } from "../shared/client/dms-client.ts";
import { generateKey } from "../shared/crypto/fernet.ts";
import { readMigrations } from "../shared/db/migrations.ts";
import { migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { DEXCOM_ENV, fakeDexcomFor } from "./support/dexcom-backend.ts";
import { egvSeries } from "./support/fake-dexcom.ts";
import { createTestKeys, type TestKeys } from "./support/firebase-tokens.ts";
import { serveJwks } from "./support/jwks-http-server.ts";
import { rejection } from "./support/rejection.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";

// Node 20 has no WebSocket; supabase-js wants one for realtime, which the app does not use here.
class NoWebSocket {
  constructor() {
    throw new Error("realtime is not used");
  }
}

let database: TestDatabase;
let keys: TestKeys;
let jwks: { url: string; close(): Promise<void> };
let server: ServeProcess;
// Dexcom's double as a real HTTP server: the Deno process reaches it over the network.
const dexcom = fakeDexcomFor(DEXCOM_ENV);
let dexcomServer: { url: string; close(): Promise<void> };

function clientFor(uid: string, claims: Record<string, unknown> = {}): DmsClient {
  const supabase = createClient(server.baseUrl, "local-anon-key", {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoWebSocket as never },
  });
  return createDmsClient({ supabase, getIdToken: () => keys.idToken({ sub: uid, ...claims }) });
}

async function apiError(promise: Promise<unknown>): Promise<DmsApiError> {
  const error = await rejection(promise);
  if (error instanceof DmsApiError) return error;
  throw error;
}

beforeAll(async () => {
  database = await migratedPostgres();
  keys = await createTestKeys();
  jwks = await serveJwks(keys.jwks);
  dexcomServer = await dexcom.listen();
  server = await startServe({
    ...DEXCOM_ENV,
    DEXCOM_API_BASE_URL: dexcomServer.url,
    DATABASE_URL: database.url,
    FIREBASE_PROJECT_ID: keys.projectId,
    FIREBASE_JWKS_URL: jwks.url,
    ENCRYPTION_KEY: generateKey(),
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await jwks?.close();
  await dexcomServer?.close();
  await database?.drop();
});

describe("npm run serve under Deno, driven by the typed client over supabase-js", () => {
  it("answers health with the newest migration", async () => {
    const newest = (await readMigrations()).at(-1)!.version;
    expect(await clientFor("nobody").health()).toEqual({ status: "ok", database: "ok", schema_version: newest });
  });

  it("covers every users and dexcom-tokens endpoint", async () => {
    const app = clientFor("e2e-user", { email: "E2E@Example.com", email_verified: true });
    expect(await apiError(app.users.get())).toMatchObject({ status: 404, code: "user_not_found" });

    const user = await app.users.register();
    expect(user).toMatchObject({ firebase_uid: "e2e-user", email: "e2e@example.com", is_active: true });
    expect(await app.users.get()).toEqual(user);
    expect(await app.dexcomTokens.status()).toEqual({ connected: false, token: null });

    const token = await app.dexcomTokens.store({ access_token: "access-e2e", refresh_token: "refresh-e2e", expires_in: 7200, dexcom_user_id: "dexcom-e2e" });
    expect(token).toMatchObject({ token_type: "Bearer", scope: "offline_access" });
    expect(await app.dexcomTokens.status()).toEqual({ connected: true, token });
    expect((await app.users.get()).dexcom_user_id).toBe("dexcom-e2e");

    expect(await app.dexcomTokens.revoke()).toBe(1);
    expect(await app.dexcomTokens.revoke()).toBe(0);
    expect(await app.dexcomTokens.status()).toEqual({ connected: false, token: null });

    await app.users.delete();
    expect(await apiError(app.users.get())).toMatchObject({ status: 404, code: "user_not_found" });
  });

  it("returns typed errors with the request id and validation details", async () => {
    const app = clientFor("e2e-errors");
    await app.users.register();
    const invalid = await apiError(app.dexcomTokens.store({ access_token: "", refresh_token: "r", expires_in: 0 }));
    expect(invalid).toMatchObject({ status: 400, code: "validation_failed" });
    expect(invalid.requestId).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(invalid.details?.map((d) => d.path).sort()).toEqual(["access_token", "expires_in"]);

    const expired = clientFor("e2e-errors", { exp: Math.floor(Date.now() / 1000) - 60 });
    expect(await apiError(expired.users.get())).toMatchObject({ status: 401, code: "token_expired" });
  });

  it("connects a Dexcom account through the OAuth flow and reads its EGVs", async () => {
    const app = clientFor("e2e-dexcom", { email: "e2e-dexcom@example.com" });
    await app.users.register();
    const person = dexcom.addUser();
    person.egvs.push(...egvSeries(new Date("2026-11-28T08:00:00Z"), 24));

    const started = await app.dexcom.startAuthorization();
    const authorize = new URL(started.authorize_url);
    expect(authorize.origin).toBe(dexcomServer.url);
    expect((await fetch(authorize)).status).toBe(200);
    // Dexcom sends the browser back to our callback (DEXCOM_REDIRECT_URI names the usual port;
    // this server listens on another, so the test follows the path there itself).
    const back = new URL(`${server.baseUrl}/functions/v1/dexcom-oauth/callback`);
    back.search = new URLSearchParams({ code: dexcom.authorize(person), state: started.state }).toString();
    const landed = await fetch(back, { redirect: "manual" });
    expect(landed.status).toBe(302);
    expect(landed.headers.get("location")).toBe(`${DEXCOM_ENV.DEXCOM_APP_REDIRECT_URL}?status=connected`);
    expect((await app.users.get()).dexcom_user_id).toBe(person.dexcomUserId);

    const egvs = await app.dexcom.egvs({ start: new Date("2026-11-28T08:00:00Z"), end: "2026-11-28T09:00:00" });
    expect(egvs.records.map((record) => record.recordId)).toEqual(person.egvs.slice(0, 13).map((record) => record.recordId));
    expect(await apiError(app.dexcom.egvs({ start: "2026-11-28", end: "2026-11-27" })))
      .toMatchObject({ status: 400, code: "validation_failed" });
    for (const secret of dexcom.secretsIssued) expect(server.output()).not.toContain(secret);
  });

  it("stops cleanly on SIGTERM", async () => {
    expect(await server.stop()).toBe(0);
  });
});
