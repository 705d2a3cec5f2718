// Two real `npm run serve` processes sharing one migrated database, configured for Dexcom with the
// fake Dexcom (test/support/fake-dexcom.ts) as a real HTTP server: msw cannot reach into the Deno
// processes, and what is shared across processes (leases, locks) is what these tests look at.
import { generateKey } from "../../shared/crypto/fernet.ts";
import { migratedPostgres, type TestDatabase } from "./databases.ts";
import { DEXCOM_ENV, fakeDexcomFor, redirectParams } from "./dexcom-backend.ts";
import type { FakeDexcom, FakeUser } from "./fake-dexcom.ts";
import { createTestKeys, type TestKeys } from "./firebase-tokens.ts";
import { serveJwks } from "./jwks-http-server.ts";
import { type ServeProcess, startServe } from "./serve-process.ts";

export interface DexcomProcesses {
  database: TestDatabase;
  keys: TestKeys;
  dexcom: FakeDexcom;
  /** The two processes, 0 and 1. */
  servers: ServeProcess[];
  /**
   * Registers uid on process 0 and starts the authorization there; `user` approves at Dexcom and
   * the browser comes back to process `callbackOn`, which must redirect with status=connected.
   * The first sync the callback starts runs on in that process's background.
   */
  connect(uid: string, user: FakeUser, callbackOn: number): Promise<ProcessCaller>;
  /** SIGKILL to each whole process group, then the fakes and the database go. */
  stop(): Promise<void>;
}

/** A registered caller of the processes. */
export interface ProcessCaller {
  idToken: string;
  /** A request with the caller's ID token to process `index` (0 or 1). */
  send(index: number, path: string, init?: RequestInit): Promise<Response>;
}

/**
 * Starts the database, the key set, the fake Dexcom and both processes. When any of them fails,
 * whatever had started is stopped before the error is passed on; once it resolves, the caller
 * stops it all with stop(), also when a test fails: nothing of a server may outlive the file.
 */
export async function startDexcomProcesses(): Promise<DexcomProcesses> {
  const servers: ServeProcess[] = [];
  let database: TestDatabase | undefined;
  let jwks: { url: string; close(): Promise<void> } | undefined;
  let dexcomServer: { url: string; close(): Promise<void> } | undefined;
  const stop = async () => {
    await Promise.all(servers.map((server) => server.kill()));
    await dexcomServer?.close();
    await jwks?.close();
    await database?.drop();
  };
  try {
    database = await migratedPostgres();
    const keys = await createTestKeys();
    jwks = await serveJwks(keys.jwks);
    const dexcom = fakeDexcomFor(DEXCOM_ENV);
    dexcomServer = await dexcom.listen();
    const env = {
      DATABASE_URL: database.url,
      FIREBASE_PROJECT_ID: keys.projectId,
      FIREBASE_JWKS_URL: jwks.url,
      ENCRYPTION_KEY: generateKey(),
      ...DEXCOM_ENV,
      DEXCOM_API_BASE_URL: dexcomServer.url,
    };
    // Both at once; whichever started is kept so that stop() stops it even when the other failed.
    const started = await Promise.allSettled([startServe(env), startServe(env)]);
    for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
    for (const result of started) if (result.status === "rejected") throw result.reason;

    const connect = async (uid: string, user: FakeUser, callbackOn: number): Promise<ProcessCaller> => {
      const idToken = await keys.idToken({ sub: uid, email: `${uid}@example.com`, email_verified: true });
      const send = (index: number, path: string, init: RequestInit = {}) => {
        const headers = new Headers(init.headers);
        headers.set("authorization", `Bearer ${idToken}`);
        return fetch(`${servers[index]!.baseUrl}/functions/v1/${path}`, { ...init, headers });
      };
      const registered = await send(0, "users", { method: "POST" });
      if (registered.status !== 200 && registered.status !== 201) throw new Error(`POST /users answered ${registered.status}`);
      const start = await send(0, "dexcom-oauth/start", { method: "POST" });
      if (start.status !== 200) throw new Error(`POST /dexcom-oauth/start answered ${start.status}`);
      const { state } = await start.json() as { state: string };
      const code = dexcom.authorize(user);
      const query = new URLSearchParams({ code, state });
      const answer = await fetch(`${servers[callbackOn]!.baseUrl}/functions/v1/dexcom-oauth/callback?${query}`, { redirect: "manual" });
      if (answer.status !== 302) throw new Error(`the callback answered ${answer.status}: ${await answer.text()}`);
      const status = redirectParams(answer.headers.get("location")).status;
      if (status !== "connected") throw new Error(`the callback redirected with status=${status}`);
      return { idToken, send };
    };
    return { database, keys, dexcom, servers, connect, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
