// The audit trail of Dexcom tokens (public.dexcom_token_events): every change of a token's life is
// recorded, in the same transaction as the change, with the request's id and never token material;
// and no API role can read it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encrypt, generateKey, importFernetKey } from "../shared/crypto/fernet.ts";
import type { CallOptions, CallResult } from "./support/backend.ts";
import { registeredCaller } from "./support/contract-helpers.ts";
import {
  type AuditRow,
  auditOf,
  callback,
  connectedCaller,
  DEXCOM_ENV,
  type DexcomBackend,
  expireStoredToken,
  redirectParams,
  refreshAtDexcom,
  startAuthorization,
  startDexcomBackend,
  tokenRows,
  userIdOf,
} from "./support/dexcom-backend.ts";
import type { FakeUser } from "./support/fake-dexcom.ts";

let backend: DexcomBackend;
const db = () => backend.database.db;

// Every response the backend gave in this file, to search them for secrets at the end.
const responses: { fn: string; path: string; result: CallResult }[] = [];
// Every ciphertext a token row held, also of rows deleted since.
const ciphertexts = new Set<string>();

beforeAll(async () => {
  backend = await startDexcomBackend();
  const call = backend.call;
  backend.call = async (fn: string, options: CallOptions = {}) => {
    const result = await call(fn, options);
    responses.push({ fn, path: options.path ?? "", result });
    return result;
  };
});
afterAll(() => backend.close());

const EGVS_WINDOW = "?startDate=2026-11-28T10:00:00Z&endDate=2026-11-28T11:00:00Z";

/** POST /dexcom-tokens with a pair the fake Dexcom issued for this account (so it is a live secret). */
function storePair(token: string, user: FakeUser, requestId: string, extra: Record<string, unknown> = {}) {
  const pair = backend.dexcom.issuePair(user);
  return backend.call("dexcom-tokens", {
    method: "POST",
    token,
    json: { ...pair, ...extra },
    headers: { "x-request-id": requestId },
  });
}

function egvs(token: string, requestId: string) {
  return backend.call("dexcom-egvs", { path: EGVS_WINDOW, token, headers: { "x-request-id": requestId } });
}

/** The same events in any order: the order within one transaction is not the point. */
function expectEvents(actual: AuditRow[], expected: AuditRow[]): void {
  expect(actual).toHaveLength(expected.length);
  expect(actual).toEqual(expect.arrayContaining(expected));
}

async function rememberCiphertexts(): Promise<void> {
  const rows = await db().query<{ a: string; r: string }>(
    "SELECT access_token_encrypted AS a, refresh_token_encrypted AS r FROM dexcom_tokens",
  );
  for (const row of rows) {
    ciphertexts.add(row.a);
    ciphertexts.add(row.r);
  }
}

describe("stored", () => {
  it("POST /dexcom-tokens records 'stored' for the new row with the request's x-request-id", async () => {
    const token = await registeredCaller(backend, "audit-store-uid");
    const stored = await storePair(token, backend.dexcom.addUser(), "audit-store-1");
    expect(stored.status).toBe(201);
    const [row] = await tokenRows(db(), "audit-store-uid");
    const userId = await userIdOf(db(), "audit-store-uid");
    expect(row!.id).toBe(stored.body.token.id);
    expect(await auditOf(db(), userId)).toEqual([
      { user_id: userId, token_id: row!.id, event: "stored", reason: null, request_id: "audit-store-1" },
    ]);
  });

  it("the OAuth callback records 'stored' with the callback's request id", async () => {
    await connectedCaller(backend, "audit-oauth-uid");
    const answer = responses.filter((r) => r.fn === "dexcom-oauth" && r.path.startsWith("/callback")).at(-1)!;
    const requestId = answer.result.headers.get("x-request-id");
    expect(requestId).toEqual(expect.any(String));
    const [row] = await tokenRows(db(), "audit-oauth-uid");
    const userId = await userIdOf(db(), "audit-oauth-uid");
    expect(await auditOf(db(), userId)).toEqual([
      { user_id: userId, token_id: row!.id, event: "stored", reason: null, request_id: requestId },
    ]);
  });
});

describe("revoked, with its reason", () => {
  it("user_request: DELETE /dexcom-tokens records one event per revoked row, and none when nothing is active", async () => {
    const token = await registeredCaller(backend, "audit-disconnect-uid");
    await storePair(token, backend.dexcom.addUser(), "audit-disconnect-store");
    const userId = await userIdOf(db(), "audit-disconnect-uid");
    const [row] = await tokenRows(db(), "audit-disconnect-uid");

    const first = await backend.call("dexcom-tokens", { method: "DELETE", token, headers: { "x-request-id": "audit-disconnect-1" } });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ revoked: 1 });
    const again = await backend.call("dexcom-tokens", { method: "DELETE", token, headers: { "x-request-id": "audit-disconnect-2" } });
    expect(again.body).toEqual({ revoked: 0 });

    expectEvents(await auditOf(db(), userId), [
      { user_id: userId, token_id: row!.id, event: "stored", reason: null, request_id: "audit-disconnect-store" },
      { user_id: userId, token_id: row!.id, event: "revoked", reason: "user_request", request_id: "audit-disconnect-1" },
    ]);
    expect(await tokenRows(db(), "audit-disconnect-uid")).toEqual([{ id: row!.id, is_revoked: true, revoked_reason: "user_request" }]);
  });

  it("replaced: a second POST /dexcom-tokens revokes the first row and stores the new one", async () => {
    const token = await registeredCaller(backend, "audit-replace-uid");
    const account = backend.dexcom.addUser();
    expect((await storePair(token, account, "audit-replace-1")).status).toBe(201);
    expect((await storePair(token, account, "audit-replace-2")).status).toBe(201);
    const userId = await userIdOf(db(), "audit-replace-uid");
    const [old, current] = await tokenRows(db(), "audit-replace-uid");

    expectEvents(await auditOf(db(), userId), [
      { user_id: userId, token_id: old!.id, event: "stored", reason: null, request_id: "audit-replace-1" },
      { user_id: userId, token_id: old!.id, event: "revoked", reason: "replaced", request_id: "audit-replace-2" },
      { user_id: userId, token_id: current!.id, event: "stored", reason: null, request_id: "audit-replace-2" },
    ]);
    expect(old!.revoked_reason).toBe("replaced");
    expect(current!.is_revoked).toBe(false);
  });

  it("replaced: a second OAuth connection revokes the first row and stores the new one", async () => {
    const { token, user } = await connectedCaller(backend, "audit-reconnect-uid");
    const userId = await userIdOf(db(), "audit-reconnect-uid");
    const [first] = await tokenRows(db(), "audit-reconnect-uid");

    const state = await startAuthorization(backend, token);
    const answer = await backend.call("dexcom-oauth", {
      path: `/callback?${new URLSearchParams({ code: backend.dexcom.authorize(user), state })}`,
      headers: { "x-request-id": "audit-reconnect-2" },
    });
    expect(redirectParams(answer.headers.get("location")).status).toBe("connected");
    const [, second] = await tokenRows(db(), "audit-reconnect-uid");

    const events = await auditOf(db(), userId);
    expect(events).toHaveLength(3);
    expect(events).toEqual(expect.arrayContaining([
      { user_id: userId, token_id: first!.id, event: "stored", reason: null, request_id: expect.any(String) },
      { user_id: userId, token_id: first!.id, event: "revoked", reason: "replaced", request_id: "audit-reconnect-2" },
      { user_id: userId, token_id: second!.id, event: "stored", reason: null, request_id: "audit-reconnect-2" },
    ]));
  });

  it("refreshed: egvs with an expired token revokes the old row and records 'refreshed' for the new one", async () => {
    const { token } = await connectedCaller(backend, "audit-refresh-uid");
    const userId = await userIdOf(db(), "audit-refresh-uid");
    const [old] = await tokenRows(db(), "audit-refresh-uid");
    await expireStoredToken(db(), "audit-refresh-uid");

    const answer = await egvs(token, "audit-refresh-1");
    expect(answer.status).toBe(200);
    const rows = await tokenRows(db(), "audit-refresh-uid");
    expect(rows).toEqual([
      { id: old!.id, is_revoked: true, revoked_reason: "refreshed" },
      { id: expect.any(Number), is_revoked: false, revoked_reason: null },
    ]);
    const fresh = rows[1]!;

    const events = await auditOf(db(), userId);
    expect(events.slice(1)).toHaveLength(2);
    expect(events.slice(1)).toEqual(expect.arrayContaining([
      { user_id: userId, token_id: old!.id, event: "revoked", reason: "refreshed", request_id: "audit-refresh-1" },
      { user_id: userId, token_id: fresh.id, event: "refreshed", reason: null, request_id: "audit-refresh-1" },
    ]));
  });

  it("refresh_rejected: Dexcom's invalid_grant records 'reauthorization_required' and revokes the row", async () => {
    const token = await registeredCaller(backend, "audit-rejected-uid");
    const account = backend.dexcom.addUser();
    const pair = backend.dexcom.issuePair(account);
    const stored = await backend.call("dexcom-tokens", { method: "POST", token, json: pair, headers: { "x-request-id": "audit-rejected-store" } });
    expect(stored.status).toBe(201);

    // Someone else spends the refresh token first: Dexcom's refresh tokens are single use.
    const spent = await refreshAtDexcom(pair.refresh_token);
    expect(spent.status).toBe(200);
    expect(backend.dexcom.liveRefreshTokens(account)).not.toContain(pair.refresh_token);

    await expireStoredToken(db(), "audit-rejected-uid");
    const answer = await egvs(token, "audit-rejected-1");
    expect(answer.status).toBe(409);
    expect(answer.body.error).toBe("dexcom_reauthorization_required");

    const userId = await userIdOf(db(), "audit-rejected-uid");
    const [row] = await tokenRows(db(), "audit-rejected-uid");
    expect(row).toEqual({ id: stored.body.token.id, is_revoked: true, revoked_reason: "refresh_rejected" });
    expectEvents(await auditOf(db(), userId), [
      { user_id: userId, token_id: row!.id, event: "stored", reason: null, request_id: "audit-rejected-store" },
      { user_id: userId, token_id: row!.id, event: "reauthorization_required", reason: "invalid_grant", request_id: "audit-rejected-1" },
      { user_id: userId, token_id: row!.id, event: "revoked", reason: "refresh_rejected", request_id: "audit-rejected-1" },
    ]);
  });

  it("account_deleted: DELETE /users deletes the tokens and the events survive with user and token ids", async () => {
    const { token, user } = await connectedCaller(backend, "audit-delete-uid");
    expect((await storePair(token, user, "audit-delete-store")).status).toBe(201);
    const userId = await userIdOf(db(), "audit-delete-uid");
    const [replaced, active] = await tokenRows(db(), "audit-delete-uid");
    const before = await auditOf(db(), userId);
    await rememberCiphertexts();

    const deleted = await backend.call("users", { method: "DELETE", token, headers: { "x-request-id": "audit-delete-1" } });
    expect(deleted.status).toBe(204);

    expect(await db().query("SELECT id FROM users WHERE id = $1", [userId])).toEqual([]);
    expect(await db().query("SELECT id FROM dexcom_tokens WHERE user_id = $1 OR id = ANY($2)", [userId, [replaced!.id, active!.id]]))
      .toEqual([]);
    const after = await auditOf(db(), userId);
    // Nothing recorded before is lost, and exactly the one active row is recorded as revoked.
    expect(after.slice(0, before.length)).toEqual(before);
    expect(before.map((e) => e.token_id)).toEqual(expect.arrayContaining([replaced!.id, active!.id]));
    expect(after.slice(before.length)).toEqual([
      { user_id: userId, token_id: active!.id, event: "revoked", reason: "account_deleted", request_id: "audit-delete-1" },
    ]);
  });
});

describe("events that change no token", () => {
  it("refresh_failed: a token endpoint 503 is recorded with a reason, and the token is kept", async () => {
    const { token } = await connectedCaller(backend, "audit-refresh-failed-uid");
    const userId = await userIdOf(db(), "audit-refresh-failed-uid");
    const rowsBefore = await tokenRows(db(), "audit-refresh-failed-uid");
    await expireStoredToken(db(), "audit-refresh-failed-uid");
    backend.dexcom.failNext("token", { kind: "status", status: 503 });

    const answer = await egvs(token, "audit-refresh-failed-1");
    expect(answer.status).toBe(502);
    expect(answer.body.error).toBe("dexcom_unavailable");

    expect(await tokenRows(db(), "audit-refresh-failed-uid")).toEqual(rowsBefore);
    const events = await auditOf(db(), userId);
    expect(events.map((e) => e.event)).toEqual(["stored", "refresh_failed"]);
    expect(events[1]).toEqual({
      user_id: userId,
      token_id: rowsBefore[0]!.id,
      event: "refresh_failed",
      reason: expect.stringMatching(/\S/),
      request_id: "audit-refresh-failed-1",
    });
  });

  it("decrypt_failed: a token no configured key opens is recorded, and the token is kept", async () => {
    const { token } = await connectedCaller(backend, "audit-decrypt-uid");
    const userId = await userIdOf(db(), "audit-decrypt-uid");
    const [row] = await tokenRows(db(), "audit-decrypt-uid");
    const foreign = await encrypt(await importFernetKey(generateKey()), "an access token under another key");
    await db().query("UPDATE dexcom_tokens SET access_token_encrypted = $1 WHERE id = $2", [foreign, row!.id]);

    const answer = await egvs(token, "audit-decrypt-1");
    expect(answer.status).toBe(500);
    expect(answer.body.error).toBe("internal_error");

    expect(await tokenRows(db(), "audit-decrypt-uid")).toEqual([row]);
    const events = await auditOf(db(), userId);
    expect(events.map((e) => e.event)).toEqual(["stored", "decrypt_failed"]);
    expect(events[1]).toEqual({
      user_id: userId,
      token_id: row!.id,
      event: "decrypt_failed",
      reason: expect.stringMatching(/\S/),
      request_id: "audit-decrypt-1",
    });
  });
});

describe("the same transaction as the change", () => {
  it("a store refused for dexcom_account_in_use writes no event (POST /dexcom-tokens and the callback)", async () => {
    const holder = await connectedCaller(backend, "audit-holder-uid");
    const token = await registeredCaller(backend, "audit-in-use-uid");
    expect((await storePair(token, backend.dexcom.addUser(), "audit-in-use-store")).status).toBe(201);
    const userId = await userIdOf(db(), "audit-in-use-uid");
    const holderId = await userIdOf(db(), "audit-holder-uid");
    const rowsBefore = await tokenRows(db(), "audit-in-use-uid");
    const eventsBefore = await auditOf(db(), userId);
    const holderEventsBefore = await auditOf(db(), holderId);

    const refused = await storePair(token, holder.user, "audit-in-use-1", { dexcom_user_id: holder.user.dexcomUserId });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe("dexcom_account_in_use");

    const state = await startAuthorization(backend, token);
    const answer = await callback(backend, { code: backend.dexcom.authorize(holder.user), state });
    expect(redirectParams(answer.headers.get("location"))).toEqual({ status: "error", reason: "dexcom_account_in_use" });

    // The active row would have been revoked ('replaced') had the refused store not rolled back.
    expect(await tokenRows(db(), "audit-in-use-uid")).toEqual(rowsBefore);
    expect(await auditOf(db(), userId)).toEqual(eventsBefore);
    expect(await auditOf(db(), holderId)).toEqual(holderEventsBefore);
  });

  it("when the event cannot be written, the change it records does not happen either", async () => {
    const { token } = await connectedCaller(backend, "audit-refuse-uid");
    const userId = await userIdOf(db(), "audit-refuse-uid");
    const tokenState = () =>
      db().query(
        `SELECT t.id, t.is_revoked, t.revoked_reason, t.access_token_encrypted, t.refresh_token_encrypted
         FROM dexcom_tokens t JOIN users u ON u.id = t.user_id WHERE u.firebase_uid = 'audit-refuse-uid' ORDER BY t.id`,
      );
    const before = await tokenState();
    const eventsBefore = await auditOf(db(), userId);

    // The audit table refuses this user's events, as a full disk or a bad deploy might.
    await db().exec(`
      CREATE FUNCTION public.audit_test_refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.user_id = ${userId} THEN RAISE EXCEPTION 'audit refused by the test'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER audit_test_refuse_events BEFORE INSERT ON public.dexcom_token_events
        FOR EACH ROW EXECUTE FUNCTION public.audit_test_refuse_events();
    `);
    try {
      expect((await storePair(token, backend.dexcom.addUser(), "audit-refuse-store")).status).toBe(500);
      expect((await backend.call("dexcom-tokens", { method: "DELETE", token })).status).toBe(500);
      expect((await backend.call("users", { method: "DELETE", token })).status).toBe(500);
      await expireStoredToken(db(), "audit-refuse-uid");
      expect((await egvs(token, "audit-refuse-refresh")).status).toBe(500);
    } finally {
      await db().exec(`
        DROP TRIGGER audit_test_refuse_events ON public.dexcom_token_events;
        DROP FUNCTION public.audit_test_refuse_events();
      `);
    }

    // The same row is the only one, still active, with the same ciphertexts; the user still exists.
    expect(await tokenState()).toEqual(before);
    expect(await userIdOf(db(), "audit-refuse-uid")).toBe(userId);
    expect(await auditOf(db(), userId)).toEqual(eventsBefore);
  });

  it("after a run of operations, every row has exactly one 'stored'/'refreshed' event and every revocation its 'revoked'", async () => {
    // A run of its own, so the check covers these kinds of change even when this test runs alone;
    // it checks every row in the table, those of the tests above included.
    const { token, user } = await connectedCaller(backend, "audit-run-uid");
    expect((await storePair(token, user, "audit-run-store")).status).toBe(201);
    await expireStoredToken(db(), "audit-run-uid");
    expect((await egvs(token, "audit-run-refresh")).status).toBe(200);
    expect((await backend.call("dexcom-tokens", { method: "DELETE", token })).body).toEqual({ revoked: 1 });
    expect((await tokenRows(db(), "audit-run-uid")).map((r) => r.revoked_reason)).toEqual(["replaced", "refreshed", "user_request"]);

    const rows = await db().query<{
      id: number;
      is_revoked: boolean;
      revoked_reason: string | null;
      births: number;
      revocations: string[];
      owners: number[];
    }>(
      `SELECT t.id, t.is_revoked IS TRUE AS is_revoked, t.revoked_reason,
              (SELECT count(*)::int FROM dexcom_token_events e
               WHERE e.token_id = t.id AND e.event IN ('stored', 'refreshed')) AS births,
              ARRAY(SELECT e.reason FROM dexcom_token_events e
                    WHERE e.token_id = t.id AND e.event = 'revoked' ORDER BY e.id) AS revocations,
              ARRAY(SELECT DISTINCT e.user_id FROM dexcom_token_events e WHERE e.token_id = t.id) AS owners
       FROM dexcom_tokens t ORDER BY t.id`,
    );
    const users = await db().query<{ id: number; user_id: number }>("SELECT id, user_id FROM dexcom_tokens");
    const ownerOf = new Map(users.map((u) => [u.id, u.user_id]));
    for (const row of rows) {
      const expected = {
        id: row.id,
        is_revoked: row.is_revoked,
        revoked_reason: row.revoked_reason,
        births: 1,
        revocations: row.is_revoked ? [row.revoked_reason] : [],
        owners: [ownerOf.get(row.id)],
      };
      expect(row).toEqual(expected);
    }
    // The check above is about something: it covered this run's rows of every reason.
    const reasons = new Set(rows.map((r) => r.revoked_reason));
    for (const reason of ["user_request", "replaced", "refreshed"]) expect(reasons).toContain(reason);
    expect(rows.some((r) => !r.is_revoked)).toBe(true);

    // Events naming a token that no longer exists are only those of deleted accounts.
    const orphans = await db().query<{ event: string; reason: string | null }>(
      `SELECT DISTINCT e.event, e.reason FROM dexcom_token_events e
       WHERE e.token_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dexcom_tokens t WHERE t.id = e.token_id)
       ORDER BY e.event, e.reason`,
    );
    for (const orphan of orphans) expect(["stored", "refreshed", "revoked"]).toContain(orphan.event);
    expect(orphans).toContainEqual({ event: "revoked", reason: "account_deleted" });
  });
});

describe("never token material", () => {
  it("no Dexcom secret, ciphertext, OAuth state or client secret in the trail, the logs or any response", async () => {
    await rememberCiphertexts();
    const states = responses
      .filter((r) => r.fn === "dexcom-oauth" && r.path === "/start")
      .map((r) => r.result.body.state as string);
    const trail = JSON.stringify(await db().query("SELECT * FROM dexcom_token_events ORDER BY id"));
    const logs = backend.logs.join("\n");

    // The searches are about something: the earlier tests produced all of these.
    expect(backend.dexcom.secretsIssued.length).toBeGreaterThan(20);
    expect(ciphertexts.size).toBeGreaterThan(20);
    expect(states.length).toBeGreaterThan(5);
    expect(trail.length).toBeGreaterThan(1000);
    expect(logs.length).toBeGreaterThan(0);

    const material = [...backend.dexcom.secretsIssued, ...ciphertexts, DEXCOM_ENV.DEXCOM_CLIENT_SECRET];
    for (const secret of [...material, ...states]) {
      expect(trail).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
    for (const { fn, path, result } of responses) {
      const text = `${result.text}\n${[...result.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}`;
      for (const secret of material) expect(text, `${fn}${path}`).not.toContain(secret);
      // /start hands its own state to the caller by design; nothing else may carry a state.
      if (!(fn === "dexcom-oauth" && path === "/start")) {
        for (const state of states) expect(text, `${fn}${path}`).not.toContain(state);
      }
    }
  });
});

describe("no API role can read it", () => {
  class RolledBack extends Error {
    constructor(readonly rows: unknown[]) {
      super("rolled back by the test");
    }
  }
  // Runs `sql` as `role` and always rolls back, so a statement that wrongly succeeds changes
  // nothing; resolves to its rows, rejects with the database's error.
  async function asRole(role: string, sql: string): Promise<unknown[]> {
    try {
      await db().transaction(async (tx) => {
        await tx.exec(`SET LOCAL ROLE ${role}`);
        throw new RolledBack(await tx.query(sql));
      });
    } catch (error) {
      if (error instanceof RolledBack) return error.rows;
      throw error;
    }
    throw new Error("the transaction did not roll back");
  }

  it.each(["anon", "authenticated"])("%s cannot select dexcom_token_events or dexcom_oauth_states", async (role) => {
    for (const table of ["dexcom_token_events", "dexcom_oauth_states"]) {
      await expect(asRole(role, `SELECT * FROM ${table}`), `${role} ${table}`).rejects.toMatchObject({ code: "42501" });
    }
  });

  it("service_role may read the trail", async () => {
    const [all] = await db().query<{ n: number }>("SELECT count(*)::int AS n FROM dexcom_token_events");
    expect(all!.n).toBeGreaterThan(0);
    await expect(asRole("service_role", "SELECT count(*)::int AS n FROM dexcom_token_events")).resolves.toEqual([{ n: all!.n }]);
  });

  it.each([
    ["insert", "INSERT INTO dexcom_token_events (user_id, token_id, event) VALUES (1, 1, 'stored')"],
    ["update", "UPDATE dexcom_token_events SET reason = 'tampered'"],
    ["delete", "DELETE FROM dexcom_token_events"],
  ])("service_role cannot %s it", async (_name, sql) => {
    await expect(asRole("service_role", sql)).rejects.toMatchObject({ code: "42501" });
  });
});
