// Concurrent POST /dexcom-sync of one user spread over two real `npm run serve` processes sharing
// one database, against the fake Dexcom as a real HTTP server: one sync per user runs at a time
// across every process (contract, "glucose history"), so ten requests make one sync's worth of
// Dexcom calls, and every caller gets that sync's result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKey } from "../shared/crypto/fernet.ts";
import { migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { DEXCOM_ENV, fakeDexcomFor, firstSyncDone, redirectParams } from "./support/dexcom-backend.ts";
import { egvSeries, type FakeDexcom, type FakeUser } from "./support/fake-dexcom.ts";
import { createTestKeys, type TestKeys } from "./support/firebase-tokens.ts";
import { serveJwks } from "./support/jwks-http-server.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";

const UID = "sync-processes-uid";
const CONCURRENT = 10;
const MINUTE = 60_000;

let database: TestDatabase | undefined;
let keys: TestKeys;
let jwks: { url: string; close(): Promise<void> } | undefined;
let dexcom: FakeDexcom;
let dexcomServer: { url: string; close(): Promise<void> } | undefined;
const servers: ServeProcess[] = [];

let idToken: string;
let dexcomUser: FakeUser;
let userId: number;

/** Now, on the 5-minute grid, so that series of readings line up with it. */
const gridNow = () => Math.floor(Date.now() / (5 * MINUTE)) * 5 * MINUTE;

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

  // Registered and connected on process 1, when Dexcom holds two hours of readings (from 4 h to 2 h ago).
  idToken = await keys.idToken({ sub: UID, email: `${UID}@example.com`, email_verified: true });
  const registered = await send(0, "users", { method: "POST" });
  expect([200, 201]).toContain(registered.status);
  const start = await send(0, "dexcom-oauth/start", { method: "POST" });
  expect(start.status).toBe(200);
  const { state } = await start.json() as { state: string };
  dexcomUser = dexcom.addUser();
  dexcomUser.egvs.push(...egvSeries(new Date(gridNow() - 4 * 60 * MINUTE), 24));
  const code = dexcom.authorize(dexcomUser);
  const answer = await fetch(`${servers[0]!.baseUrl}/functions/v1/dexcom-oauth/callback?${new URLSearchParams({ code, state })}`, {
    redirect: "manual",
  });
  expect(answer.status).toBe(302);
  expect(redirectParams(answer.headers.get("location")).status).toBe("connected");
  // The first sync runs in the background of process 1 after the redirect.
  await firstSyncDone(database.db, UID);
  const [row] = await database.db.query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [UID]);
  userId = row!.id;
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

async function storedCount(): Promise<number> {
  const [row] = await database!.db.query<{ n: number }>("SELECT count(*)::int AS n FROM glucose_readings WHERE user_id = $1", [userId]);
  return row!.n;
}

describe("10 concurrent POST /dexcom-sync of one user over two serve processes sharing the database", () => {
  it("one sync's worth of Dexcom calls in all; all 10 answer 200 with that sync's result", async () => {
    expect(await storedCount()).toBe(24);
    // Twenty readings arrived at Dexcom since the first sync (the newest 25 minutes ago).
    const newest = Date.parse(`${dexcomUser.egvs.at(-1)!.systemTime}Z`);
    const added = egvSeries(new Date(newest + 5 * MINUTE), 20);
    dexcomUser.egvs.push(...added);
    // The last sync looks two minutes old, so the requests are not answered too_soon.
    await database!.db.query("UPDATE dexcom_sync_state SET synced_at = synced_at - interval '2 minutes' WHERE user_id = $1", [userId]);
    // Dexcom takes a second to answer, so that the other requests arrive while the sync runs.
    dexcom.failNext("egvs", { kind: "delay", ms: 1000 });
    const before = { ...dexcom.counts };

    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, async (_, i) => {
        const response = await send(i % 2, "dexcom-sync", { method: "POST" });
        return { status: response.status, text: await response.text() };
      }),
    );

    for (const answer of answers) expect(answer.status, answer.text).toBe(200);
    // A later sync is one egvs window (an hour before the newest stored reading to now), no dataRange
    // and, the token being fresh, no token call.
    expect(dexcom.counts.egvs - before.egvs).toBe(1);
    expect(dexcom.counts.dataRange - before.dataRange).toBe(0);
    expect(dexcom.counts.token - before.token).toBe(0);
    const results = answers.map((answer) => (JSON.parse(answer.text) as { sync: Record<string, unknown> }).sync);
    for (const result of results) {
      expect(result).toMatchObject({
        new_readings: 20,
        newest_reading_at: new Date(Date.parse(`${added.at(-1)!.systemTime}Z`)).toISOString(),
      });
    }
    expect(new Set(results.map((result) => result.synced_at)).size).toBe(1);
    expect(await storedCount()).toBe(44);
  }, 45_000);
});
