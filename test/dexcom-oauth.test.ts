import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CallResult, startTestBackend } from "./support/backend.ts";
import {
  ERROR_KEYS,
  headerText,
  ISO_UTC,
  registeredCaller,
  setInactive,
  snapshotTables,
  tokenBody,
} from "./support/contract-helpers.ts";
import {
  auditOf,
  callback,
  connectedCaller,
  type DexcomBackend,
  redirectParams,
  startAuthorization,
  startDexcomBackend,
  tokenRows,
} from "./support/dexcom-backend.ts";
import { egvSeries, type FakeUser } from "./support/fake-dexcom.ts";

let backend: DexcomBackend;
beforeAll(async () => (backend = await startDexcomBackend()));
afterAll(() => backend.close());
const db = () => backend.database.db;

/** DEXCOM_APP_REDIRECT_URL of the shared backend. */
const APP = "dms://dexcom-connected";
/** Parameters an attacker may add to the callback; none of them may reach the redirect. */
const NOISE = { next: "https://evil.example", redirect_uri: "https://evil.example/steal" };

// Every state this file was given and every response of the callback (or of a data call), so the
// last test can tell that none of them leaked anywhere.
const statesIssued: string[] = [];
const answersSeen: CallResult[] = [];

const sha256Hex = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

/** POST /dexcom-oauth/start for a caller; the state, remembered for the leak test. */
async function begin(token: string): Promise<string> {
  const state = await startAuthorization(backend, token);
  statesIssued.push(state);
  return state;
}

/** The callback as the browser makes it, with the attacker's extra parameters. */
async function comeBack(query: Record<string, string>): Promise<CallResult> {
  const answer = await callback(backend, { ...query, ...NOISE });
  answersSeen.push(answer);
  return answer;
}

/** A callback that must fail with this reason: 302 to exactly the app URL, never cached. */
async function failedCallback(query: Record<string, string>, reason: string): Promise<CallResult> {
  const answer = await comeBack(query);
  expect(answer.status).toBe(302);
  expect(answer.headers.get("location")).toBe(`${APP}?status=error&reason=${reason}`);
  expect(answer.headers.get("cache-control")).toBe("no-store");
  expect(headerText(answer.headers)).not.toContain("evil.example");
  return answer;
}

/** A callback whose query repeats a parameter (a record cannot); must fail with this reason, as failedCallback. */
async function repeatedCallback(query: [string, string][], reason: string): Promise<void> {
  const answer = await backend.call("dexcom-oauth", { path: `/callback?${new URLSearchParams([...query, ...Object.entries(NOISE)])}` });
  answersSeen.push(answer);
  expect(answer.status).toBe(302);
  expect(answer.headers.get("location")).toBe(`${APP}?status=error&reason=${reason}`);
  expect(answer.headers.get("cache-control")).toBe("no-store");
  expect(headerText(answer.headers)).not.toContain("evil.example");
}

/** A callback that must connect. */
async function connectingCallback(query: Record<string, string>): Promise<void> {
  const answer = await comeBack(query);
  expect(answer.status).toBe(302);
  expect(answer.headers.get("location")).toBe(`${APP}?status=connected`);
}

/** The state is gone from the table and a second try with it, with a fresh good code, is invalid_state. */
async function expectUsedUp(state: string): Promise<void> {
  const rows = await db().query("SELECT 1 FROM dexcom_oauth_states WHERE state_hash = decode($1, 'hex')", [sha256Hex(state)]);
  expect(rows).toEqual([]);
  const exchanges = backend.dexcom.counts.exchange;
  await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "invalid_state");
  expect(backend.dexcom.counts.exchange).toBe(exchanges);
}

/** users, dexcom_tokens and the audit trail: what a failed callback must not touch. */
async function snapshot() {
  return {
    ...(await snapshotTables(db())),
    events: await db().query("SELECT * FROM dexcom_token_events ORDER BY id"),
  };
}

async function userIdOf(uid: string): Promise<number> {
  const [row] = await db().query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [uid]);
  return row!.id;
}

async function dexcomUserIdOf(uid: string): Promise<string | null> {
  const [row] = await db().query<{ dexcom_user_id: string | null }>("SELECT dexcom_user_id FROM users WHERE firebase_uid = $1", [uid]);
  return row!.dexcom_user_id;
}

const activeRows = async (uid: string) => (await tokenRows(db(), uid)).filter((row) => row.is_revoked !== true);

describe("the whole flow", () => {
  it("start, approve, callback: tokens stored encrypted, dexcom_user_id set, 302 connected; then egvs returns Dexcom's body", async () => {
    const token = await registeredCaller(backend, "flow-uid");
    const started = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token });
    expect(started.status).toBe(200);
    statesIssued.push(started.body.state);
    const authorize = new URL(started.body.authorize_url);
    expect(authorize.origin + authorize.pathname).toBe("https://sandbox-api.dexcom.com/v2/oauth2/login");
    expect(Object.fromEntries(authorize.searchParams)).toEqual({
      client_id: "test-client-id",
      redirect_uri: "http://127.0.0.1:54321/functions/v1/dexcom-oauth/callback",
      response_type: "code",
      scope: "offline_access",
      state: started.body.state,
    });
    // The browser goes there; the fake accepts exactly these parameters.
    expect((await fetch(authorize)).status).toBe(200);

    const user = backend.dexcom.addUser();
    user.egvs.push(...egvSeries(new Date("2026-11-28T10:00:00Z"), 12));
    const answer = await callback(backend, { code: backend.dexcom.authorize(user), state: started.body.state });
    answersSeen.push(answer);
    expect(answer.status).toBe(302);
    expect(answer.headers.get("location")).toBe("dms://dexcom-connected?status=connected");
    expect(answer.headers.get("cache-control")).toBe("no-store");

    const [row] = await db().query<{ access_token_encrypted: string; refresh_token_encrypted: string; dexcom_user_id: string }>(
      `SELECT t.access_token_encrypted, t.refresh_token_encrypted, u.dexcom_user_id FROM dexcom_tokens t
       JOIN users u ON u.id = t.user_id WHERE u.firebase_uid = 'flow-uid' AND t.is_revoked IS NOT TRUE`,
    );
    expect(row!.dexcom_user_id).toBe(user.dexcomUserId);
    expect(row!.access_token_encrypted).toMatch(/^gAAAAA/);
    for (const secret of backend.dexcom.secretsIssued) expect(JSON.stringify(row)).not.toContain(secret);

    const egvs = await backend.call("dexcom-egvs", {
      path: "?startDate=2026-11-28T10:00:00Z&endDate=2026-11-28T11:00:00Z",
      token,
    });
    answersSeen.push(egvs);
    expect(egvs.status).toBe(200);
    expect(egvs.body.userId).toBe(user.dexcomUserId);
    expect(egvs.body.records.map((r: { recordId: string }) => r.recordId)).toEqual(user.egvs.slice(0, 12).map((r) => r.recordId));
  });

  it("reconnecting revokes the first token as 'replaced' and leaves exactly one active row", async () => {
    const { token, user } = await connectedCaller(backend, "reconnect-uid");
    const [first] = await tokenRows(db(), "reconnect-uid");
    await connectingCallback({ code: backend.dexcom.authorize(user), state: await begin(token) });

    const rows = await tokenRows(db(), "reconnect-uid");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual({ id: first!.id, is_revoked: true, revoked_reason: "replaced" });
    expect(rows[1]!.is_revoked).not.toBe(true);
    expect(await activeRows("reconnect-uid")).toEqual([rows[1]]);
    expect(await dexcomUserIdOf("reconnect-uid")).toBe(user.dexcomUserId);
    const trail = (await auditOf(db(), await userIdOf("reconnect-uid"))).map((e) => [e.event, e.reason, e.token_id]);
    expect(trail).toEqual([
      ["stored", null, first!.id],
      ["revoked", "replaced", first!.id],
      ["stored", null, rows[1]!.id],
    ]);
  });
});

describe("POST /dexcom-oauth/start", () => {
  it("answers 200 {authorize_url, state, expires_at}, expiring in 10 minutes, ISO UTC, never cached", async () => {
    const token = await registeredCaller(backend, "start-shape-uid");
    const before = Date.now();
    const started = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token });
    const after = Date.now();
    expect(started.status).toBe(200);
    statesIssued.push(started.body.state);
    expect(Object.keys(started.body).sort()).toEqual(["authorize_url", "expires_at", "state"]);
    expect(started.body.expires_at).toMatch(ISO_UTC);
    const expiresAt = Date.parse(started.body.expires_at);
    // The clock of Postgres and ours may differ a little; ten minutes give or take a few seconds.
    expect(expiresAt).toBeGreaterThanOrEqual(before + 600_000 - 5000);
    expect(expiresAt).toBeLessThanOrEqual(after + 600_000 + 5000);
    expect(new URL(started.body.authorize_url).searchParams.get("state")).toBe(started.body.state);
  });

  it("gives a new state of at least 128 random bits, base64url, each call", async () => {
    const token = await registeredCaller(backend, "start-random-uid");
    const states = [await begin(token), await begin(token), await begin(token)];
    for (const state of states) {
      expect(state).toMatch(/^[A-Za-z0-9_-]{22,}$/);
      expect(Buffer.from(state, "base64url").length).toBeGreaterThanOrEqual(16);
    }
    expect(new Set(states).size).toBe(3);
  });

  it("stores the state only as its SHA-256, bound to the caller", async () => {
    const token = await registeredCaller(backend, "start-hash-uid");
    const state = await begin(token);
    const userId = await userIdOf("start-hash-uid");

    const [bound] = await db().query<{ user_id: number }>(
      "SELECT user_id FROM dexcom_oauth_states WHERE encode(state_hash, 'hex') = $1",
      [sha256Hex(state)],
    );
    expect(bound).toEqual({ user_id: userId });

    // Every column of every row, as text: no column holds the state, nor its bytes.
    const rows = await db().query<{ row: string }>("SELECT to_jsonb(s)::text AS row FROM dexcom_oauth_states s");
    expect(rows.length).toBeGreaterThan(0);
    const dump = rows.map((r) => r.row).join("\n");
    expect(dump).toContain(sha256Hex(state));
    expect(dump).not.toContain(state);
    expect(dump).not.toContain(Buffer.from(state, "utf8").toString("hex"));
  });

  it("accepts an empty JSON object; any other body is 400 validation_failed and starts nothing", async () => {
    const token = await registeredCaller(backend, "start-body-uid");
    const empty = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token, json: {} });
    expect(empty.status).toBe(200);
    statesIssued.push(empty.body.state);

    const userId = await userIdOf("start-body-uid");
    const count = async () =>
      (await db().query<{ n: number }>("SELECT count(*)::int AS n FROM dexcom_oauth_states WHERE user_id = $1", [userId]))[0]!.n;
    const before = await count();
    const full = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token, json: { redirect_uri: "https://evil.example" } });
    expect(full.status).toBe(400);
    expect(full.body.error).toBe("validation_failed");
    expect(await count()).toBe(before);
  });

  it("without a token: 401 missing_token", async () => {
    const answer = await backend.call("dexcom-oauth", { method: "POST", path: "/start" });
    expect(answer.status).toBe(401);
    expect(answer.body.error).toBe("missing_token");
  });

  it("an unregistered caller: 404 user_not_found", async () => {
    const token = await backend.token("start-stranger-uid");
    const answer = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token });
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBe("user_not_found");
  });

  it("an inactive caller: 403 user_inactive, and no state recorded", async () => {
    const token = await registeredCaller(backend, "start-inactive-uid");
    await setInactive(db(), "start-inactive-uid");
    const answer = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token });
    expect(answer.status).toBe(403);
    expect(answer.body.error).toBe("user_inactive");
    const rows = await db().query("SELECT 1 FROM dexcom_oauth_states WHERE user_id = $1", [await userIdOf("start-inactive-uid")]);
    expect(rows).toEqual([]);
  });

  it("a new start leaves the earlier state valid: both work, once each", async () => {
    const token = await registeredCaller(backend, "two-starts-uid");
    const user = backend.dexcom.addUser();
    const first = await begin(token);
    const second = await begin(token);
    await connectingCallback({ code: backend.dexcom.authorize(user), state: first });
    await connectingCallback({ code: backend.dexcom.authorize(user), state: second });
    await expectUsedUp(first);
    await expectUsedUp(second);
    expect(await activeRows("two-starts-uid")).toHaveLength(1);
  });
});

describe("a callback that fails stores nothing and uses the state up", () => {
  it("an unknown state", async () => {
    await registeredCaller(backend, "unknown-state-uid");
    const user = backend.dexcom.addUser();
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(user), state: "not-a-state-we-issued" }, "invalid_state");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    expect(await tokenRows(db(), "unknown-state-uid")).toEqual([]);
  });

  it("a replayed state", async () => {
    const token = await registeredCaller(backend, "replay-uid");
    const state = await begin(token);
    const user = backend.dexcom.addUser();
    await connectingCallback({ code: backend.dexcom.authorize(user), state });
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(user), state }, "invalid_state");
    expect(await snapshot()).toEqual(before);
    expect(await tokenRows(db(), "replay-uid")).toHaveLength(1);
  });

  it("declined (error=access_denied): 302 status=denied, nothing else", async () => {
    const token = await registeredCaller(backend, "declined-uid");
    const state = await begin(token);
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    const answer = await comeBack({ error: "access_denied", error_description: "The user denied access", state });
    expect(answer.status).toBe(302);
    expect(answer.headers.get("location")).toBe(`${APP}?status=denied`);
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  it("another error from Dexcom: dexcom_error", async () => {
    const token = await registeredCaller(backend, "dexcom-error-param-uid");
    const state = await begin(token);
    const before = await snapshot();
    await failedCallback({ error: "server_error", state }, "dexcom_error");
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  it("no state: invalid_state, Dexcom never asked", async () => {
    await registeredCaller(backend, "no-state-uid");
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()) }, "invalid_state");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
  });

  it("no code: dexcom_error", async () => {
    const token = await registeredCaller(backend, "no-code-uid");
    const state = await begin(token);
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ state }, "dexcom_error");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  // A parameter given twice has no one meaning (the first? the last?); the callback still answers
  // with a redirect, as for any other bad callback.
  it("a state given twice: invalid_state, Dexcom never asked, neither state used up", async () => {
    const token = await registeredCaller(backend, "repeated-state-uid");
    const [first, second] = [await begin(token), await begin(token)];
    const code = backend.dexcom.authorize(backend.dexcom.addUser());
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await repeatedCallback([["code", code], ["state", first], ["state", second]], "invalid_state");
    await repeatedCallback([["code", code], ["state", first], ["state", first]], "invalid_state");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    // Which of the two was meant cannot be told, so neither is taken.
    const kept = await db().query("SELECT 1 FROM dexcom_oauth_states WHERE state_hash IN (decode($1, 'hex'), decode($2, 'hex'))", [
      sha256Hex(first),
      sha256Hex(second),
    ]);
    expect(kept).toHaveLength(2);
  });

  it.each([["a code", "code"], ["an error", "error"]])("%s given twice: dexcom_error, Dexcom never asked, the state used up", async (_, name) => {
    const token = await registeredCaller(backend, `repeated-${name}-uid`);
    const state = await begin(token);
    const user = backend.dexcom.addUser();
    const values = name === "code" ? [backend.dexcom.authorize(user), backend.dexcom.authorize(user)] : ["access_denied", "access_denied"];
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await repeatedCallback([["state", state], [name, values[0]!], [name, values[1]!]], "dexcom_error");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  it("an expired state: invalid_state, Dexcom never asked", async () => {
    const token = await registeredCaller(backend, "expired-state-uid");
    const state = await begin(token);
    await db().query(
      "UPDATE dexcom_oauth_states SET expires_at = now() - interval '1 second' WHERE state_hash = decode($1, 'hex')",
      [sha256Hex(state)],
    );
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "invalid_state");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    expect(await tokenRows(db(), "expired-state-uid")).toEqual([]);
    await expectUsedUp(state);
  });

  it("a state whose user was deleted: invalid_state", async () => {
    const token = await registeredCaller(backend, "deleted-user-uid");
    const state = await begin(token);
    expect((await backend.call("users", { method: "DELETE", token })).status).toBe(204);
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "invalid_state");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
  });

  it("a user made inactive after starting: user_inactive; the state is gone even once active again", async () => {
    const token = await registeredCaller(backend, "inactive-cb-uid");
    const state = await begin(token);
    await setInactive(db(), "inactive-cb-uid");
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "user_inactive");
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await snapshot()).toEqual(before);
    await db().query("UPDATE users SET is_active = true WHERE firebase_uid = 'inactive-cb-uid'");
    await expectUsedUp(state);
  });

  it("Dexcom refuses the code (already used: invalid_grant): dexcom_error", async () => {
    const user = backend.dexcom.addUser();
    const code = backend.dexcom.authorize(user);
    const first = await registeredCaller(backend, "code-used-first-uid");
    await connectingCallback({ code, state: await begin(first) });

    const second = await registeredCaller(backend, "code-used-second-uid");
    const state = await begin(second);
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code, state }, "dexcom_error");
    expect(backend.dexcom.counts.exchange).toBe(exchanges + 1);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  it("Dexcom's token endpoint answers 503: dexcom_unavailable", async () => {
    const token = await registeredCaller(backend, "token-503-uid");
    const state = await begin(token);
    backend.dexcom.failNext("token", { kind: "status", status: 503, body: "Service Unavailable" });
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "dexcom_unavailable");
    expect(backend.dexcom.counts.exchange).toBe(exchanges + 1);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  it("Dexcom's token endpoint answers something that is not JSON: dexcom_unavailable", async () => {
    const token = await registeredCaller(backend, "token-html-uid");
    const state = await begin(token);
    backend.dexcom.failNext("token", { kind: "not_json" });
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "dexcom_unavailable");
    expect(backend.dexcom.counts.exchange).toBe(exchanges + 1);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  });

  // Dexcom's real 10 s deadline: this test takes that long.
  it("Dexcom's token endpoint slower than 10 s: dexcom_unavailable", async () => {
    const token = await registeredCaller(backend, "token-slow-uid");
    const state = await begin(token);
    backend.dexcom.failNext("token", { kind: "delay", ms: 11_000 });
    const exchanges = backend.dexcom.counts.exchange;
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "dexcom_unavailable");
    expect(backend.dexcom.counts.exchange).toBe(exchanges + 1);
    expect(await snapshot()).toEqual(before);
    await expectUsedUp(state);
  }, 20_000);

  it("dataRange fails (500) after a good exchange: dexcom_unavailable, nothing stored", async () => {
    const token = await registeredCaller(backend, "datarange-500-uid");
    const state = await begin(token);
    backend.dexcom.failNext("dataRange", { kind: "status", status: 500, body: "{}" });
    const calls = { exchange: backend.dexcom.counts.exchange, dataRange: backend.dexcom.counts.dataRange };
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "dexcom_unavailable");
    expect(backend.dexcom.counts.exchange).toBe(calls.exchange + 1);
    expect(backend.dexcom.counts.dataRange).toBe(calls.dataRange + 1);
    expect(await snapshot()).toEqual(before);
    expect(await dexcomUserIdOf("datarange-500-uid")).toBeNull();
    await expectUsedUp(state);
  });

  it("a Dexcom account already linked to another user: dexcom_account_in_use", async () => {
    const { user } = await connectedCaller(backend, "in-use-owner-uid");
    const token = await registeredCaller(backend, "in-use-second-uid");
    const state = await begin(token);
    const before = await snapshot();
    await failedCallback({ code: backend.dexcom.authorize(user), state }, "dexcom_account_in_use");
    expect(await snapshot()).toEqual(before);
    expect(await tokenRows(db(), "in-use-second-uid")).toEqual([]);
    expect(await dexcomUserIdOf("in-use-second-uid")).toBeNull();
    expect(await dexcomUserIdOf("in-use-owner-uid")).toBe(user.dexcomUserId);
    expect(await activeRows("in-use-owner-uid")).toHaveLength(1);
    await expectUsedUp(state);
  });
});

describe("a state belongs to the user who started it", () => {
  it("A's state with B's Dexcom approval (and B's ID token on the request): the tokens land on A only", async () => {
    const tokenA = await registeredCaller(backend, "owner-a-uid");
    const tokenB = await registeredCaller(backend, "other-b-uid");
    // B has a manually stored token and a pending authorization of their own.
    expect((await backend.call("dexcom-tokens", { method: "POST", token: tokenB, json: tokenBody() })).status).toBe(201);
    const stateB = await begin(tokenB);
    const userIdB = await userIdOf("other-b-uid");
    const rowsOfB = async () => ({
      user: await db().query("SELECT * FROM users WHERE id = $1", [userIdB]),
      tokens: await db().query("SELECT * FROM dexcom_tokens WHERE user_id = $1 ORDER BY id", [userIdB]),
      states: await db().query("SELECT * FROM dexcom_oauth_states WHERE user_id = $1 ORDER BY state_hash", [userIdB]),
      events: await db().query("SELECT * FROM dexcom_token_events WHERE user_id = $1 ORDER BY id", [userIdB]),
    });
    const before = await rowsOfB();
    expect(before.states).toHaveLength(1);

    const stateA = await begin(tokenA);
    const accountOfB: FakeUser = backend.dexcom.addUser();
    // The callback carries no identity but the state: B's ID token on it changes nothing.
    const answer = await backend.call("dexcom-oauth", {
      path: `/callback?${new URLSearchParams({ code: backend.dexcom.authorize(accountOfB), state: stateA, ...NOISE })}`,
      token: tokenB,
    });
    answersSeen.push(answer);
    expect(answer.status).toBe(302);
    expect(answer.headers.get("location")).toBe(`${APP}?status=connected`);

    expect(await activeRows("owner-a-uid")).toHaveLength(1);
    expect(await dexcomUserIdOf("owner-a-uid")).toBe(accountOfB.dexcomUserId);
    expect(await rowsOfB()).toEqual(before);

    // B's own state is still B's: the same Dexcom account cannot be attached to B now (A holds it),
    // and nothing of A's changes by it.
    const rowsOfA = await tokenRows(db(), "owner-a-uid");
    await failedCallback({ code: backend.dexcom.authorize(accountOfB), state: stateB }, "dexcom_account_in_use");
    expect(await tokenRows(db(), "owner-a-uid")).toEqual(rowsOfA);
    expect(await dexcomUserIdOf("other-b-uid")).toBeNull();
    await expectUsedUp(stateA);
  });
});

describe("secrets stay secret", () => {
  it("no code, state or Dexcom token appears in a log line, a callback answer, or a row", async () => {
    // One more of each kind here, so this test has something to find even on its own.
    const { token } = await connectedCaller(backend, "secrets-uid");
    const state = await begin(token);
    backend.dexcom.failNext("dataRange", { kind: "status", status: 500 });
    await failedCallback({ code: backend.dexcom.authorize(backend.dexcom.addUser()), state }, "dexcom_unavailable");

    const secrets = [...backend.dexcom.secretsIssued, ...statesIssued];
    expect(backend.dexcom.secretsIssued.length).toBeGreaterThan(20);
    expect(statesIssued.length).toBeGreaterThan(20);
    const leaks = (texts: string[]) => secrets.filter((secret) => texts.some((text) => text.includes(secret)));

    expect(backend.logs.length).toBeGreaterThan(0);
    expect(leaks(backend.logs)).toEqual([]);
    expect(answersSeen.length).toBeGreaterThan(20);
    expect(leaks(answersSeen.map((a) => `${a.text}\n${headerText(a.headers)}`))).toEqual([]);
    for (const table of ["dexcom_oauth_states", "dexcom_token_events", "users", "dexcom_tokens"]) {
      const rows = await db().query<{ row: string }>(`SELECT to_jsonb(t)::text AS row FROM ${table} t`);
      expect(rows.length, table).toBeGreaterThan(0);
      expect(leaks(rows.map((r) => r.row)), table).toEqual([]);
    }
  });
});

// Last in the file on purpose: msw's interception is process-wide. While another backend is open its
// msw answers every outgoing request, and closing it restores the real fetch, so the shared backend
// can no longer reach its fake Dexcom after these tests.
describe("configuration", () => {
  it("DEXCOM_APP_REDIRECT_URL missing: start and callback answer 503 not_configured as JSON", async () => {
    const partial = await startDexcomBackend({ DEXCOM_APP_REDIRECT_URL: "" });
    try {
      const token = await registeredCaller(partial, "no-app-url-uid");
      const start = await partial.call("dexcom-oauth", { method: "POST", path: "/start", token });
      expect(start.status).toBe(503);
      expect(start.body.error).toBe("not_configured");
      const answer = await callback(partial, { code: "some-code", state: "some-state" });
      expect(answer.status).toBe(503);
      expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
      expect(answer.headers.get("location")).toBeNull();
      expect(Object.keys(answer.body).sort()).toEqual([...ERROR_KEYS].sort());
      expect(answer.body.error).toBe("not_configured");
      expect(await partial.database.db.query("SELECT 1 FROM dexcom_oauth_states")).toEqual([]);
    } finally {
      await partial.close();
    }
  });

  it("no DEXCOM_* at all: start and callback answer 503 not_configured as JSON", async () => {
    const plain = await startTestBackend();
    try {
      const token = await registeredCaller(plain, "no-dexcom-uid");
      const start = await plain.call("dexcom-oauth", { method: "POST", path: "/start", token });
      expect(start.status).toBe(503);
      expect(start.body.error).toBe("not_configured");
      const answer = await plain.call("dexcom-oauth", { path: "/callback?code=some-code&state=some-state" });
      expect(answer.status).toBe(503);
      expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
      expect(answer.headers.get("location")).toBeNull();
      expect(answer.body.error).toBe("not_configured");
    } finally {
      await plain.close();
    }
  });

  it("an app redirect URL with its own query keeps it", async () => {
    const web = await startDexcomBackend({ DEXCOM_APP_REDIRECT_URL: "https://app.example/done?from=dms" });
    try {
      const token = await registeredCaller(web, "web-app-uid");
      const state = await startAuthorization(web, token);
      const code = web.dexcom.authorize(web.dexcom.addUser());
      const connected = await callback(web, { code, state, ...NOISE });
      expect(connected.status).toBe(302);
      expect(connected.headers.get("location")).toBe("https://app.example/done?from=dms&status=connected");
      const failed = await callback(web, { code, state, ...NOISE });
      expect(failed.headers.get("location")).toBe("https://app.example/done?from=dms&status=error&reason=invalid_state");
    } finally {
      await web.close();
    }
  });
});
