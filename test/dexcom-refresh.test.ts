// The token service (shared/dexcom/token-service.ts) through GET /dexcom-egvs: when a token is
// refreshed, that concurrent requests spend the single-use refresh token exactly once, what an
// invalid_grant, a transient failure, a disconnect in flight and an unreadable row each lead to.
// The fake Dexcom is served by msw; the database is a real Postgres.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { encrypt, generateKey, importFernetKey } from "../shared/crypto/fernet.ts";
import { type KeyRing, loadKeyRing } from "../shared/crypto/key-ring.ts";
import type { CallResult } from "./support/backend.ts";
import { registeredCaller, setInactive } from "./support/contract-helpers.ts";
import {
  auditOf,
  connectedCaller,
  DEXCOM_TOKEN_URL,
  type DexcomBackend,
  expireStoredToken,
  refreshAtDexcom,
  startDexcomBackend,
  tokenRows,
  userIdOf,
} from "./support/dexcom-backend.ts";
import { egvSeries, type Fault, type FakeUser } from "./support/fake-dexcom.ts";

let backend: DexcomBackend;
let keyRing: KeyRing;
beforeAll(async () => {
  backend = await startDexcomBackend();
  // The backend's own key, to read and write token rows as it does.
  keyRing = await loadKeyRing({ ENCRYPTION_KEY: backend.encryptionKey });
});
afterAll(() => backend.close());
const db = () => backend.database.db;
const fake = () => backend.dexcom;

const WINDOW = "?startDate=2026-11-28T10:00:00Z&endDate=2026-11-28T11:00:00Z";

function egvs(token: string): Promise<CallResult> {
  return backend.call("dexcom-egvs", { path: WINDOW, token });
}

/** A Dexcom account with an hour of readings inside WINDOW, so a 200 carries something to compare. */
function withReadings(user: FakeUser): FakeUser {
  user.egvs.push(...egvSeries(new Date("2026-11-28T10:00:00Z"), 12));
  return user;
}

interface ActiveRow {
  id: number;
  access_token_encrypted: string;
  refresh_token_encrypted: string;
  refresh_lease_holder: string | null;
  refresh_lease_expires_at: Date | null;
}

async function activeRows(uid: string): Promise<ActiveRow[]> {
  return db().query<ActiveRow>(
    `SELECT t.id, t.access_token_encrypted, t.refresh_token_encrypted, t.refresh_lease_holder, t.refresh_lease_expires_at
     FROM dexcom_tokens t JOIN users u ON u.id = t.user_id
     WHERE u.firebase_uid = $1 AND t.is_revoked IS NOT TRUE ORDER BY t.id`,
    [uid],
  );
}

async function onlyActiveRow(uid: string): Promise<ActiveRow> {
  const rows = await activeRows(uid);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const plain = async (encrypted: string) => new TextDecoder().decode(await keyRing.decrypt(encrypted));

/** A caller connected through POST /dexcom-tokens with a pair the fake issued, so the test knows the tokens. */
async function seededCaller(uid: string) {
  const token = await registeredCaller(backend, uid);
  const user = withReadings(fake().addUser());
  const pair = fake().issuePair(user);
  const stored = await backend.call("dexcom-tokens", {
    method: "POST",
    token,
    json: { access_token: pair.access_token, refresh_token: pair.refresh_token, expires_in: pair.expires_in },
  });
  if (stored.status !== 201) throw new Error(`POST /dexcom-tokens answered ${stored.status}: ${stored.text}`);
  return { token, user, pair, tokenId: stored.body.token.id as number };
}

/** Waits (bounded) until the fake has received `count` refresh calls in all. */
async function refreshCallsReach(count: number): Promise<void> {
  for (let i = 0; i < 200 && fake().counts.refresh < count; i++) await new Promise((r) => setTimeout(r, 10));
  expect(fake().counts.refresh).toBe(count);
}

describe("concurrent requests of one user", () => {
  it("20 requests with an expired token: one refresh, 20 answers of Dexcom's body, one active row holding the new pair", async () => {
    const { token, user } = await connectedCaller(backend, "concurrent-uid");
    withReadings(user);
    const [before] = await activeRows("concurrent-uid");
    await expireStoredToken(db(), "concurrent-uid");
    const refreshes = fake().counts.refresh;

    const answers = await Promise.all(Array.from({ length: 20 }, () => egvs(token)));

    expect(fake().counts.refresh - refreshes).toBe(1);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    for (const answer of answers) {
      expect(answer.body.userId).toBe(user.dexcomUserId);
      expect(answer.body.records.map((r: { recordId: string }) => r.recordId)).toEqual(user.egvs.map((r) => r.recordId));
    }

    // The new pair is stored: the one live refresh token at Dexcom is the active row's.
    const after = await onlyActiveRow("concurrent-uid");
    expect(after.id).not.toBe(before!.id);
    expect(fake().liveRefreshTokens(user)).toEqual([await plain(after.refresh_token_encrypted)]);
    expect(fake().liveRefreshTokens(user)).not.toContain(await plain(before!.refresh_token_encrypted));
    const rows = await tokenRows(db(), "concurrent-uid");
    expect(rows).toEqual([
      { id: before!.id, is_revoked: true, revoked_reason: "refreshed" },
      { id: after.id, is_revoked: false, revoked_reason: null },
    ]);

    const audit = await auditOf(db(), await userIdOf(db(), "concurrent-uid"));
    const refreshed = audit.filter((e) => e.event === "refreshed");
    const revoked = audit.filter((e) => e.event === "revoked");
    expect(refreshed).toHaveLength(1);
    expect(refreshed[0]!.token_id).toBe(after.id);
    expect(revoked).toHaveLength(1);
    expect(revoked[0]).toMatchObject({ token_id: before!.id, reason: "refreshed" });
    // Recorded under the request that did the refresh.
    expect(answers.map((a) => a.headers.get("x-request-id"))).toContain(refreshed[0]!.request_id);
    expect(audit.filter((e) => e.event === "refresh_failed")).toEqual([]);

    // The stored pair works: another request uses it without refreshing.
    const again = await egvs(token);
    expect(again.status).toBe(200);
    expect(fake().counts.refresh - refreshes).toBe(1);
  });
});

describe("when a token is refreshed first", () => {
  it("a token expiring within 60 s (in 30 s) is refreshed before the data call", async () => {
    const { token } = await connectedCaller(backend, "margin-30s-uid");
    const before = await onlyActiveRow("margin-30s-uid");
    await db().query("UPDATE dexcom_tokens SET expires_at = now() + interval '30 seconds' WHERE id = $1", [before.id]);
    const refreshes = fake().counts.refresh;

    expect((await egvs(token)).status).toBe(200);
    expect(fake().counts.refresh - refreshes).toBe(1);
    expect((await onlyActiveRow("margin-30s-uid")).id).not.toBe(before.id);
  });

  it("a token expiring in 5 minutes is used as it is", async () => {
    const { token } = await connectedCaller(backend, "margin-5min-uid");
    const before = await onlyActiveRow("margin-5min-uid");
    await db().query("UPDATE dexcom_tokens SET expires_at = now() + interval '5 minutes' WHERE id = $1", [before.id]);
    const refreshes = fake().counts.refresh;

    expect((await egvs(token)).status).toBe(200);
    expect(fake().counts.refresh - refreshes).toBe(0);
    expect((await onlyActiveRow("margin-5min-uid")).id).toBe(before.id);
  });
});

describe("Dexcom answers 401 to a token the row says is fresh", () => {
  it("refreshes once and retries the data call once: 200", async () => {
    const { token, user, pair, tokenId } = await seededCaller("401-once-uid");
    fake().expireAccessToken(pair.access_token);
    const { refresh, egvs: dataCalls } = { ...fake().counts };

    const answer = await egvs(token);

    expect(answer.status).toBe(200);
    expect(answer.body.userId).toBe(user.dexcomUserId);
    expect(fake().counts.refresh - refresh).toBe(1);
    expect(fake().counts.egvs - dataCalls).toBe(2);
    expect((await onlyActiveRow("401-once-uid")).id).not.toBe(tokenId);
    expect((await tokenRows(db(), "401-once-uid"))[0]).toEqual({ id: tokenId, is_revoked: true, revoked_reason: "refreshed" });
  });

  it("a second 401 after the refresh: 502 dexcom_unavailable (the refreshed pair is kept)", async () => {
    const { token } = await connectedCaller(backend, "401-twice-uid");
    const before = await onlyActiveRow("401-twice-uid");
    fake().failNext("egvs", { kind: "status", status: 401 }, 2);
    const { refresh, egvs: dataCalls } = { ...fake().counts };

    const answer = await egvs(token);

    expect(answer.status).toBe(502);
    expect(answer.body.error).toBe("dexcom_unavailable");
    expect(fake().counts.refresh - refresh).toBe(1);
    expect(fake().counts.egvs - dataCalls).toBe(2);
    // The refresh itself succeeded, so its pair is stored and used next time without refreshing.
    expect((await onlyActiveRow("401-twice-uid")).id).not.toBe(before.id);
    expect((await egvs(token)).status).toBe(200);
    expect(fake().counts.refresh - refresh).toBe(1);
  });
});

describe("Dexcom refuses the refresh token (invalid_grant)", () => {
  it("revokes the row (refresh_rejected): 409 dexcom_reauthorization_required, then again without calling Dexcom; disconnected", async () => {
    const { token, pair, tokenId } = await seededCaller("invalid-grant-uid");
    // Someone else spent the refresh token: Dexcom will refuse it from now on.
    expect((await refreshAtDexcom(pair.refresh_token)).status).toBe(200);
    await expireStoredToken(db(), "invalid-grant-uid");
    const tokenCalls = fake().counts.token;

    const answer = await egvs(token);

    expect(answer.status).toBe(409);
    expect(answer.body.error).toBe("dexcom_reauthorization_required");
    expect(fake().counts.token - tokenCalls).toBe(1);
    expect(await tokenRows(db(), "invalid-grant-uid")).toEqual([
      { id: tokenId, is_revoked: true, revoked_reason: "refresh_rejected" },
    ]);
    const audit = await auditOf(db(), await userIdOf(db(), "invalid-grant-uid"));
    expect(audit.map((e) => [e.event, e.reason, e.token_id])).toEqual([
      ["stored", null, tokenId],
      ["reauthorization_required", "invalid_grant", tokenId],
      ["revoked", "refresh_rejected", tokenId],
    ]);

    const calls = { ...fake().counts };
    const again = await egvs(token);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe("dexcom_reauthorization_required");
    expect(fake().counts).toEqual(calls);

    const status = await backend.call("dexcom-tokens", { token });
    expect(status.status).toBe(200);
    expect(status.body).toEqual({ connected: false, token: null });
  });

  it("the loser of a refresh race is not disconnected: it answers 200 with the winner's token", async () => {
    const { token, user, pair, tokenId } = await seededCaller("race-loser-uid");
    // If the request fell back on its old access token, Dexcom would refuse it (and it would refresh again).
    fake().expireAccessToken(pair.access_token);
    await expireStoredToken(db(), "race-loser-uid");
    fake().failNext("token", { kind: "delay", ms: 1500 });
    const { refresh, egvs: dataCalls } = { ...fake().counts };

    // Request A takes the lease and calls Dexcom, which holds its answer for 1.5 s ...
    const loser = egvs(token);
    await refreshCallsReach(refresh + 1);
    // ... while a "winner" in another process spends the same refresh token first and stores the
    // new pair through the production SQL (it does not look at the lease).
    const won = await refreshAtDexcom(pair.refresh_token);
    expect(won.status).toBe(200);
    const winner = (await won.json()) as { access_token: string; refresh_token: string; expires_in: number };
    const [stored] = await db().query<{ outcome: string; id: number }>(
      "SELECT * FROM dms.store_refreshed_dexcom_token($1, $2, $3, $4, 'Bearer', $5, 'test')",
      [
        tokenId,
        await keyRing.encrypt(winner.access_token),
        await keyRing.encrypt(winner.refresh_token),
        winner.expires_in,
        keyRing.primaryKeyId,
      ],
    );
    expect(stored!.outcome).toBe("stored");

    // A's refresh token is now dead at Dexcom: invalid_grant, yet a newer pair exists.
    const answer = await loser;

    expect(answer.status).toBe(200);
    expect(answer.body.userId).toBe(user.dexcomUserId);
    expect(fake().counts.refresh - refresh).toBe(2);
    expect(fake().counts.egvs - dataCalls).toBe(1);
    const active = await onlyActiveRow("race-loser-uid");
    expect(active.id).toBe(stored!.id);
    expect(await plain(active.refresh_token_encrypted)).toBe(winner.refresh_token);
    expect((await tokenRows(db(), "race-loser-uid"))[0]).toEqual({ id: tokenId, is_revoked: true, revoked_reason: "refreshed" });
    const audit = await auditOf(db(), await userIdOf(db(), "race-loser-uid"));
    expect(audit.filter((e) => e.event === "reauthorization_required" || e.reason === "refresh_rejected")).toEqual([]);
    const status = await backend.call("dexcom-tokens", { token });
    expect(status.body.connected).toBe(true);
    expect(status.body.token.id).toBe(stored!.id);
  });

  it("reject_dexcom_refresh leaves a row alone ('contended') while another holder has a live lease", async () => {
    await connectedCaller(backend, "contended-uid");
    const row = await onlyActiveRow("contended-uid");
    const holder = crypto.randomUUID();
    await db().query(
      "UPDATE dexcom_tokens SET refresh_lease_holder = $2, refresh_lease_expires_at = now() + interval '20 seconds' WHERE id = $1",
      [row.id, holder],
    );
    const userId = await userIdOf(db(), "contended-uid");
    const auditBefore = await auditOf(db(), userId);

    const [other] = await db().query<{ outcome: string }>(
      "SELECT dms.reject_dexcom_refresh($1, $2, 'test') AS outcome",
      [row.id, crypto.randomUUID()],
    );
    expect(other!.outcome).toBe("contended");
    expect((await onlyActiveRow("contended-uid")).id).toBe(row.id);
    expect(await auditOf(db(), userId)).toEqual(auditBefore);

    // The lease's own holder is not contended: its invalid_grant revokes.
    const [own] = await db().query<{ outcome: string }>(
      "SELECT dms.reject_dexcom_refresh($1, $2, 'test') AS outcome",
      [row.id, holder],
    );
    expect(own!.outcome).toBe("revoked");
    expect(await activeRows("contended-uid")).toEqual([]);
  });
});

describe("a transient refresh failure keeps the token", () => {
  type Case = {
    name: string;
    fault: Fault | "network";
    status: number;
    error: string;
    reason: string;
  };
  const cases: Case[] = [
    { name: "token endpoint 503", fault: { kind: "status", status: 503 }, status: 502, error: "dexcom_unavailable", reason: "http_503" },
    { name: "an answer that is not JSON", fault: { kind: "not_json" }, status: 502, error: "dexcom_unavailable", reason: "bad_answer" },
    {
      name: "400 invalid_request",
      fault: { kind: "status", status: 400, body: '{"error":"invalid_request"}', headers: { "content-type": "application/json" } },
      status: 502,
      error: "dexcom_unavailable",
      reason: "oauth_invalid_request",
    },
    { name: "429", fault: { kind: "rate_limited", retryAfter: "120" }, status: 429, error: "rate_limited", reason: "rate_limited" },
    { name: "a network error", fault: "network", status: 502, error: "dexcom_unavailable", reason: "network" },
  ];

  it.each(cases)("$name: $status $error, the row still active, the lease given back, refresh_failed ($reason)", async (c) => {
    const uid = `transient-${c.reason}-uid`;
    const { token } = await connectedCaller(backend, uid);
    await expireStoredToken(db(), uid);
    const before = await onlyActiveRow(uid);

    let answer: CallResult;
    if (c.fault === "network") {
      answer = await withNetworkErrorOnTokenCall(() => egvs(token));
    } else {
      fake().failNext("token", c.fault);
      answer = await egvs(token);
    }

    expect(answer.status).toBe(c.status);
    expect(answer.body.error).toBe(c.error);
    if (c.status === 429) expect(answer.headers.get("retry-after")).toBe("120");
    await expectKeptAndRecorded(uid, before, c.reason, answer);
    await expectRefreshedAtOnce(uid, token, before);
  });

  it("a token endpoint slower than 10 s: 502 dexcom_unavailable, the token kept (timeout)", async () => {
    const uid = "transient-timeout-uid";
    const { token } = await connectedCaller(backend, uid);
    await expireStoredToken(db(), uid);
    const before = await onlyActiveRow(uid);
    fake().failNext("token", { kind: "delay", ms: 11_000 });

    const answer = await egvs(token);

    expect(answer.status).toBe(502);
    expect(answer.body.error).toBe("dexcom_unavailable");
    await expectKeptAndRecorded(uid, before, "timeout", answer);
    await expectRefreshedAtOnce(uid, token, before);
  }, 30_000);

  async function expectKeptAndRecorded(uid: string, before: ActiveRow, reason: string, answer: CallResult) {
    const row = await onlyActiveRow(uid);
    expect(row.id).toBe(before.id);
    expect(row.refresh_token_encrypted).toBe(before.refresh_token_encrypted);
    expect(row.refresh_lease_holder).toBeNull();
    expect(row.refresh_lease_expires_at).toBeNull();
    const audit = await auditOf(db(), await userIdOf(db(), uid));
    expect(audit.filter((e) => e.event !== "stored")).toEqual([
      { user_id: expect.any(Number), token_id: before.id, event: "refresh_failed", reason, request_id: answer.headers.get("x-request-id") },
    ]);
  }

  // The lease was given back, so the next request refreshes at once instead of waiting it out.
  async function expectRefreshedAtOnce(uid: string, token: string, before: ActiveRow) {
    const refreshes = fake().counts.refresh;
    const next = await egvs(token);
    expect(next.status).toBe(200);
    expect(fake().counts.refresh - refreshes).toBe(1);
    expect((await onlyActiveRow(uid)).id).not.toBe(before.id);
  }
});

/**
 * Runs `request` with the next call to Dexcom's token endpoint failing as a refused connection
 * does in Node (fetch rejects with a TypeError); the fake has no such fault, since msw answers
 * every request it handles. The Dexcom client calls the global fetch, so that is where it fails.
 */
async function withNetworkErrorOnTokenCall<T>(request: () => Promise<T>): Promise<T> {
  const realFetch = globalThis.fetch;
  let failed = 0;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url === DEXCOM_TOKEN_URL && failed === 0) {
      failed++;
      const cause = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      return Promise.reject(new TypeError("fetch failed", { cause }));
    }
    return realFetch(input, init);
  });
  try {
    return await request();
  } finally {
    spy.mockRestore();
    // The failure must have happened where intended, or the test proves nothing.
    expect(failed).toBe(1);
  }
}

describe("a disconnect while a refresh is in flight", () => {
  it("the refreshed pair is not stored; the request answers 409 dexcom_not_connected; disconnected afterwards", async () => {
    const { token } = await connectedCaller(backend, "disconnect-in-flight-uid");
    const before = await onlyActiveRow("disconnect-in-flight-uid");
    await expireStoredToken(db(), "disconnect-in-flight-uid");
    fake().failNext("token", { kind: "delay", ms: 1000 });
    const refreshes = fake().counts.refresh;

    const inFlight = egvs(token);
    await refreshCallsReach(refreshes + 1);
    const disconnected = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(disconnected.status).toBe(200);
    expect(disconnected.body).toEqual({ revoked: 1 });

    // Dexcom's new pair arrives after the disconnect: dms.store_refreshed_dexcom_token finds the
    // row gone and stores nothing; the service then re-reads the connection and finds none.
    const answer = await inFlight;
    expect(answer.status).toBe(409);
    expect(answer.body.error).toBe("dexcom_not_connected");
    expect(await activeRows("disconnect-in-flight-uid")).toEqual([]);
    expect(await tokenRows(db(), "disconnect-in-flight-uid")).toEqual([
      { id: before.id, is_revoked: true, revoked_reason: "user_request" },
    ]);
    const audit = await auditOf(db(), await userIdOf(db(), "disconnect-in-flight-uid"));
    expect(audit.filter((e) => e.event === "refreshed")).toEqual([]);
    const status = await backend.call("dexcom-tokens", { token });
    expect(status.body).toEqual({ connected: false, token: null });
  });
});

describe("a stored token no key can decrypt", () => {
  it("500 internal_error, decrypt_failed recorded, the row kept, Dexcom not called", async () => {
    const { token } = await connectedCaller(backend, "undecryptable-uid");
    const before = await onlyActiveRow("undecryptable-uid");
    const otherKey = await importFernetKey(generateKey());
    const foreign = await encrypt(otherKey, "an access token under a key this server does not have");
    await db().query("UPDATE dexcom_tokens SET access_token_encrypted = $2 WHERE id = $1", [before.id, foreign]);
    const calls = { ...fake().counts };

    const answer = await egvs(token);

    expect(answer.status).toBe(500);
    expect(answer.body.error).toBe("internal_error");
    expect(fake().counts).toEqual(calls);
    const row = await onlyActiveRow("undecryptable-uid");
    expect(row.id).toBe(before.id);
    expect(row.access_token_encrypted).toBe(foreign);
    const audit = await auditOf(db(), await userIdOf(db(), "undecryptable-uid"));
    expect(audit.filter((e) => e.event !== "stored")).toEqual([
      {
        user_id: expect.any(Number),
        token_id: before.id,
        event: "decrypt_failed",
        reason: "no_key_matches",
        request_id: answer.headers.get("x-request-id"),
      },
    ]);
  });
});

describe("callers without a usable connection", () => {
  it("registered but not connected: 409 dexcom_not_connected", async () => {
    const token = await registeredCaller(backend, "not-connected-uid");
    const calls = { ...fake().counts };
    const answer = await egvs(token);
    expect(answer.status).toBe(409);
    expect(answer.body.error).toBe("dexcom_not_connected");
    expect(fake().counts).toEqual(calls);
  });

  it("never registered: 404 user_not_found", async () => {
    const answer = await egvs(await backend.token("never-registered-uid"));
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBe("user_not_found");
  });

  it("inactive: 403 user_inactive, Dexcom not called", async () => {
    const { token } = await connectedCaller(backend, "inactive-uid");
    await setInactive(db(), "inactive-uid");
    const calls = { ...fake().counts };
    const answer = await egvs(token);
    expect(answer.status).toBe(403);
    expect(answer.body.error).toBe("user_inactive");
    expect(fake().counts).toEqual(calls);
  });
});
