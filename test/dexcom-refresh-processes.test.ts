// Concurrent egvs requests of one user whose Dexcom token has expired, spread over two real
// `npm run serve` processes sharing one database, against the fake Dexcom as a real HTTP server:
// Dexcom's refresh tokens are single use, so exactly one of them may refresh (contract,
// "dexcom-egvs"), whichever process it runs in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey } from "../shared/crypto/fernet.ts";
import { migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { DEXCOM_ENV, expireStoredToken, fakeDexcomFor, redirectParams, tokenRows } from "./support/dexcom-backend.ts";
import { egvSeries, type FakeDexcom, type FakeUser } from "./support/fake-dexcom.ts";
import { createTestKeys, type TestKeys } from "./support/firebase-tokens.ts";
import { serveJwks } from "./support/jwks-http-server.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";

const UID = "refresh-processes-uid";
const CONCURRENT = 20;
const WINDOW = "startDate=2026-11-28T10:00:00Z&endDate=2026-11-28T11:00:00Z";

let database: TestDatabase | undefined;
let keys: TestKeys;
let jwks: { url: string; close(): Promise<void> } | undefined;
let dexcom: FakeDexcom;
let dexcomServer: { url: string; close(): Promise<void> } | undefined;
const servers: ServeProcess[] = [];

let idToken: string;
let dexcomUser: FakeUser;

beforeAll(async () => {
  database = await migratedPostgres();
  keys = await createTestKeys();
  jwks = await serveJwks(keys.jwks);
  dexcom = fakeDexcomFor(DEXCOM_ENV);
  dexcomServer = await dexcom.listen();
  const env = {
    DATABASE_URL: database.url,
    FIREBASE_PROJECT_ID: keys.projectId,
    FIREBASE_JWKS_URL: jwks.url,
    ENCRYPTION_KEY: generateKey(),
    ...DEXCOM_ENV,
    DEXCOM_API_BASE_URL: dexcomServer.url,
  };
  // Both at once; whichever started is kept so that afterAll stops it even when the other failed.
  const started = await Promise.allSettled([startServe(env), startServe(env)]);
  for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
  for (const result of started) if (result.status === "rejected") throw result.reason;

  // Registered on process 1, authorization started there, the browser comes back to process 2.
  idToken = await keys.idToken({ sub: UID, email: `${UID}@example.com`, email_verified: true });
  const registered = await send(0, "users", { method: "POST" });
  expect([200, 201]).toContain(registered.status);
  const started1 = await send(0, "dexcom-oauth/start", { method: "POST" });
  expect(started1.status).toBe(200);
  const { state } = await started1.json() as { state: string };

  dexcomUser = dexcom.addUser();
  dexcomUser.egvs.push(...egvSeries(new Date("2026-11-28T10:00:00Z"), 12));
  const code = dexcom.authorize(dexcomUser);
  const answer = await fetch(`${servers[1]!.baseUrl}/functions/v1/dexcom-oauth/callback?${new URLSearchParams({ code, state })}`, {
    redirect: "manual",
  });
  expect(answer.status).toBe(302);
  expect(redirectParams(answer.headers.get("location")).status).toBe("connected");
}, 90_000);

afterAll(async () => {
  // SIGKILL to each whole process group: nothing of a server may outlive the file, even on failure.
  await Promise.all(servers.map((server) => server.kill()));
  await dexcomServer?.close();
  await jwks?.close();
  await database?.drop();
});

/** A request with the caller's ID token to process `index` (0 or 1). */
function send(index: number, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${idToken}`);
  return fetch(`${servers[index]!.baseUrl}/functions/v1/${path}`, { ...init, headers });
}

function activeRows(rows: Awaited<ReturnType<typeof tokenRows>>) {
  return rows.filter((row) => row.is_revoked !== true);
}

/**
 * Expires the stored token (and, as Dexcom would, every access token issued so far, so a request
 * that used the old one could not pass), fires the concurrent requests alternating between the two
 * processes, and checks that exactly one refresh happened and exactly one new row holds its pair.
 */
async function expiredRound(): Promise<void> {
  const db = database!.db;
  const before = await tokenRows(db, UID);
  const [oldActive] = activeRows(before);
  expect(activeRows(before)).toHaveLength(1);

  await expireStoredToken(db, UID);
  for (const secret of dexcom.secretsIssued) dexcom.expireAccessToken(secret);
  const refreshesBefore = dexcom.counts.refresh;

  const answers = await Promise.all(
    Array.from({ length: CONCURRENT }, async (_, i) => {
      const response = await send(i % 2, `dexcom-egvs?${WINDOW}`);
      return { status: response.status, text: await response.text() };
    }),
  );

  // Every caller gets Dexcom's body, passed through.
  const expected = { recordType: "egv", recordVersion: "3.0", userId: dexcomUser.dexcomUserId, records: dexcomUser.egvs };
  for (const answer of answers) {
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toEqual(expected);
  }

  // One refresh across both processes.
  expect(dexcom.counts.refresh - refreshesBefore).toBe(1);

  // Exactly one new row, the only active one; the old one revoked as refreshed.
  const after = await tokenRows(db, UID);
  expect(after).toHaveLength(before.length + 1);
  const active = activeRows(after);
  expect(active).toHaveLength(1);
  expect(active[0]!.id).not.toBe(oldActive!.id);
  expect(after.find((row) => row.id === oldActive!.id)).toMatchObject({ is_revoked: true, revoked_reason: "refreshed" });

  // Dexcom holds one live refresh token for the user: the one the new row stores.
  expect(dexcom.liveRefreshTokens(dexcomUser)).toHaveLength(1);
}

describe("an expired token, 20 concurrent egvs requests over two serve processes sharing the database", () => {
  it("refreshes exactly once, all 20 succeed, one new active row holds the new pair", async () => {
    await expiredRound();
  }, 45_000);

  it("holds again on a second expiry", async () => {
    await expiredRound();
  }, 45_000);

  it("neither process ever wrote a Dexcom token, code or the client secret to its output", () => {
    // Something was issued and something was written, so the check below looks at real text.
    expect(dexcom.secretsIssued.length).toBeGreaterThanOrEqual(5);
    for (const server of servers) {
      const output = server.output();
      expect(output.length).toBeGreaterThan(0);
      expect(output).not.toContain(DEXCOM_ENV.DEXCOM_CLIENT_SECRET);
      for (const secret of dexcom.secretsIssued) expect(output).not.toContain(secret);
    }
  });
});
