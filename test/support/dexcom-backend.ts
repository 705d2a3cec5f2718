// A backend configured for Dexcom, with the fake Dexcom (test/support/fake-dexcom.ts) served by msw
// at the configured API host, and the steps a person goes through to connect.
import type { Queryable } from "../../shared/db/database.ts";
import { startTestBackend, type TestBackend } from "./backend.ts";
import { registeredCaller } from "./contract-helpers.ts";
import { FakeDexcom, type FakeUser } from "./fake-dexcom.ts";
import { eventually } from "./processes.ts";
import { fakeDexcomHandlers } from "./fake-dexcom-msw.ts";

export const DEXCOM_ENV = {
  DEXCOM_CLIENT_ID: "test-client-id",
  DEXCOM_CLIENT_SECRET: "test-client-secret-do-not-log",
  DEXCOM_REDIRECT_URI: "http://127.0.0.1:54321/functions/v1/dexcom-oauth/callback",
  DEXCOM_API_BASE_URL: "https://sandbox-api.dexcom.com",
  DEXCOM_APP_REDIRECT_URL: "dms://dexcom-connected",
};

/** Dexcom's token endpoint at DEXCOM_ENV's API host. */
export const DEXCOM_TOKEN_URL = `${DEXCOM_ENV.DEXCOM_API_BASE_URL}/v2/oauth2/token`;

export interface DexcomBackend extends TestBackend {
  dexcom: FakeDexcom;
}

/** startTestBackend with the DEXCOM_* variables set (overridable) and the fake Dexcom behind them. */
export async function startDexcomBackend(env: Record<string, string> = {}): Promise<DexcomBackend> {
  const settings = { ...DEXCOM_ENV, ...env };
  const dexcom = fakeDexcomFor(settings);
  const backend = await startTestBackend(settings, { handlers: fakeDexcomHandlers(dexcom, settings.DEXCOM_API_BASE_URL) });
  const closeBackend = backend.close;
  return Object.assign(backend, {
    dexcom,
    close: async () => {
      dexcom.cancelDelays();
      await closeBackend();
    },
  });
}

export function fakeDexcomFor(env: Record<string, string>): FakeDexcom {
  return new FakeDexcom({
    clientId: env.DEXCOM_CLIENT_ID!,
    clientSecret: env.DEXCOM_CLIENT_SECRET!,
    redirectUri: env.DEXCOM_REDIRECT_URI!,
  });
}

/** POST /dexcom-oauth/start for a caller; the state it gave. */
export async function startAuthorization(backend: TestBackend, token: string): Promise<string> {
  const started = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token });
  if (started.status !== 200) throw new Error(`start answered ${started.status}: ${started.text}`);
  return started.body.state;
}

/** GET /dexcom-oauth/callback with these query parameters, as the browser comes back. */
export function callback(backend: TestBackend, query: Record<string, string>) {
  return backend.call("dexcom-oauth", { path: `/callback?${new URLSearchParams(query)}` });
}

/** The redirect's query parameters (status, reason). */
export function redirectParams(location: string | null): Record<string, string> {
  if (location === null) throw new Error("no location header");
  return Object.fromEntries(new URL(location).searchParams);
}

/**
 * A registered caller connected to a new Dexcom account the whole way (start, approval, callback).
 * Returns the caller's ID token and their Dexcom account.
 */
export async function connectedCaller(
  backend: DexcomBackend,
  uid: string,
): Promise<{ token: string; user: FakeUser }> {
  const token = await registeredCaller(backend, uid);
  const user = backend.dexcom.addUser();
  const state = await startAuthorization(backend, token);
  const code = backend.dexcom.authorize(user);
  const answer = await callback(backend, { code, state });
  const status = redirectParams(answer.headers.get("location")).status;
  if (answer.status !== 302 || status !== "connected") throw new Error(`callback answered ${answer.status} ${status}`);
  await firstSyncDone(backend.database.db, uid);
  return { token, user };
}

/**
 * Waits until the sync the callback started in the background has finished (or failed), so that
 * what a test does next (faults queued at the fake, counts) is not mixed up with it.
 */
export async function firstSyncDone(db: Queryable, uid: string): Promise<void> {
  const done = await eventually(async () => {
    const [row] = await db.query<{ finished: boolean }>(
      `SELECT (s.synced_at IS NOT NULL OR s.last_error IS NOT NULL)
              AND (s.lease_expires_at IS NULL OR s.lease_expires_at <= now()) AS finished
       FROM dexcom_sync_state s JOIN users u ON u.id = s.user_id WHERE u.firebase_uid = $1`,
      [uid],
    );
    return row?.finished === true;
  }, 15_000);
  if (!done) throw new Error(`the first sync of ${uid} did not finish within 15 s`);
}

/**
 * What another holder of the client credentials would do: spend a refresh token at Dexcom itself
 * (the fake, through msw), so that Dexcom's single-use refresh token is gone when the backend tries it.
 */
export function refreshAtDexcom(refreshToken: string): Promise<Response> {
  return fetch(DEXCOM_TOKEN_URL, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      client_id: DEXCOM_ENV.DEXCOM_CLIENT_ID,
      client_secret: DEXCOM_ENV.DEXCOM_CLIENT_SECRET,
      grant_type: "refresh_token",
      refresh_token: refreshToken,
    }),
  });
}

/** The users row id of a Firebase uid. */
export async function userIdOf(db: Queryable, uid: string): Promise<number> {
  const [row] = await db.query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [uid]);
  if (!row) throw new Error(`no user ${uid}`);
  return row.id;
}

/** Makes the caller's active token expire now, as time would (the row only; Dexcom is told separately). */
export async function expireStoredToken(db: Queryable, uid: string): Promise<void> {
  await db.query(
    `UPDATE dexcom_tokens t SET expires_at = now() - interval '1 minute'
     FROM users u WHERE u.id = t.user_id AND u.firebase_uid = $1 AND t.is_revoked IS NOT TRUE`,
    [uid],
  );
}

export interface TokenRow {
  id: number;
  is_revoked: boolean | null;
  revoked_reason: string | null;
}

export async function tokenRows(db: Queryable, uid: string): Promise<TokenRow[]> {
  return db.query<TokenRow>(
    `SELECT t.id, t.is_revoked, t.revoked_reason FROM dexcom_tokens t JOIN users u ON u.id = t.user_id
     WHERE u.firebase_uid = $1 ORDER BY t.id`,
    [uid],
  );
}

export interface AuditRow {
  user_id: number;
  token_id: number | null;
  event: string;
  reason: string | null;
  request_id: string | null;
}

/** The audit trail of a user id, oldest first. */
export async function auditOf(db: Queryable, userId: number): Promise<AuditRow[]> {
  return db.query<AuditRow>(
    "SELECT user_id, token_id, event, reason, request_id FROM dexcom_token_events WHERE user_id = $1 ORDER BY id",
    [userId],
  );
}
