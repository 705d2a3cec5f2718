import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import {
  ISO_UTC,
  registeredCaller,
  setInactive,
  snapshotTables,
  TOKEN_KEYS,
  tokenBody,
} from "./support/contract-helpers.ts";
import { insertToken } from "./support/rows.ts";

let backend: TestBackend;
beforeAll(async () => (backend = await startTestBackend()));
afterAll(() => backend.close());

const db = () => backend.database.db;

interface TokenRow {
  id: number;
  is_revoked: boolean | null;
  revoked_at: Date | null;
}

async function tokenRowsOf(uid: string): Promise<TokenRow[]> {
  return db().query<TokenRow>(
    `SELECT t.id, t.is_revoked, t.revoked_at FROM dexcom_tokens t JOIN users u ON u.id = t.user_id
     WHERE u.firebase_uid = $1 ORDER BY t.id`,
    [uid],
  );
}

const store = (token: string, body: Record<string, unknown> = tokenBody()) =>
  backend.call("dexcom-tokens", { method: "POST", token, json: body });

describe("POST /dexcom-tokens", () => {
  it("answers 201 {token} with exactly the contract's fields", async () => {
    const token = await registeredCaller(backend, "store-shape-uid");
    const { status, body } = await store(token);
    expect(status).toBe(201);
    expect(Object.keys(body)).toEqual(["token"]);
    expect(Object.keys(body.token).sort()).toEqual(TOKEN_KEYS);
    expect(body.token.id).toEqual(expect.any(Number));
    for (const field of ["expires_at", "created_at", "updated_at"]) expect(body.token[field]).toMatch(ISO_UTC);
  });

  it("defaults token_type to Bearer and scope to offline_access", async () => {
    const token = await registeredCaller(backend, "defaults-uid");
    const { body } = await store(token);
    expect(body.token).toMatchObject({ token_type: "Bearer", scope: "offline_access" });
  });

  it("keeps a given token_type and scope", async () => {
    const token = await registeredCaller(backend, "custom-type-uid");
    const { body } = await store(token, tokenBody({ token_type: "mac", scope: "offline_access egv" }));
    expect(body.token).toMatchObject({ token_type: "mac", scope: "offline_access egv" });
  });

  it("sets expires_at to now + expires_in", async () => {
    const token = await registeredCaller(backend, "expiry-uid");
    const before = Date.now();
    const { body } = await store(token, tokenBody({ expires_in: 3600 }));
    const after = Date.now();
    const expiresAt = Date.parse(body.token.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 3600_000 - 2000);
    expect(expiresAt).toBeLessThanOrEqual(after + 3600_000 + 2000);
    const [row] = await db().query<{ expires_in: number }>("SELECT expires_in FROM dexcom_tokens WHERE id = $1", [body.token.id]);
    expect(row!.expires_in).toBe(3600);
  });

  it("never answers with the access or refresh token", async () => {
    const token = await registeredCaller(backend, "no-echo-uid");
    const { text } = await store(token, tokenBody({ access_token: "distinct-access-xyz", refresh_token: "distinct-refresh-xyz" }));
    expect(text).not.toContain("distinct-access-xyz");
    expect(text).not.toContain("distinct-refresh-xyz");
  });

  it("revokes the previous active token (is_revoked, revoked_at) and keeps the new one active", async () => {
    const token = await registeredCaller(backend, "revoker-uid");
    const first = await store(token);
    const second = await store(token);
    expect(second.status).toBe(201);
    const rows = await tokenRowsOf("revoker-uid");
    expect(rows.map((row) => row.id)).toEqual([first.body.token.id, second.body.token.id]);
    expect(rows[0]).toMatchObject({ is_revoked: true, revoked_at: expect.any(Date) });
    expect(rows[1]).toMatchObject({ is_revoked: false, revoked_at: null });
  });

  it("revokes a legacy token whose is_revoked is NULL", async () => {
    const token = await registeredCaller(backend, "legacy-null-uid");
    const [user] = await db().query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = 'legacy-null-uid'");
    const legacyId = await insertToken(db(), user!.id, { is_revoked: null });
    expect((await store(token)).status).toBe(201);
    const [legacy] = await db().query<TokenRow>("SELECT id, is_revoked, revoked_at FROM dexcom_tokens WHERE id = $1", [legacyId]);
    expect(legacy).toMatchObject({ is_revoked: true, revoked_at: expect.any(Date) });
  });

  it("sets dexcom_user_id on the user", async () => {
    const token = await registeredCaller(backend, "dexcom-id-uid");
    expect((await store(token, tokenBody({ dexcom_user_id: "dexcom-account-1" }))).status).toBe(201);
    const user = await backend.call("users", { token });
    expect(user.body.user.dexcom_user_id).toBe("dexcom-account-1");
  });

  it("accepts the same dexcom_user_id again from the user who holds it", async () => {
    const token = await registeredCaller(backend, "same-dexcom-uid");
    expect((await store(token, tokenBody({ dexcom_user_id: "dexcom-account-same" }))).status).toBe(201);
    expect((await store(token, tokenBody({ dexcom_user_id: "dexcom-account-same" }))).status).toBe(201);
  });

  it("answers 409 dexcom_account_in_use when another user holds the Dexcom account, and stores nothing", async () => {
    const holder = await registeredCaller(backend, "dexcom-holder-uid");
    expect((await store(holder, tokenBody({ dexcom_user_id: "dexcom-account-held" }))).status).toBe(201);
    const other = await registeredCaller(backend, "dexcom-other-uid");
    const earlier = await store(other);
    const before = await snapshotTables(db());

    const { status, body } = await store(other, tokenBody({ dexcom_user_id: "dexcom-account-held" }));
    expect(status).toBe(409);
    expect(body.error).toBe("dexcom_account_in_use");
    expect(await snapshotTables(db())).toEqual(before);
    // The caller's earlier token is still the active one.
    const active = await backend.call("dexcom-tokens", { token: other });
    expect(active.body.token.id).toBe(earlier.body.token.id);
  });

  it("answers 404 user_not_found when the caller did not POST /users, and stores nothing", async () => {
    const before = await snapshotTables(db());
    const token = await backend.token("unregistered-store-uid");
    const { status, body } = await store(token);
    expect(status).toBe(404);
    expect(body.error).toBe("user_not_found");
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("answers 403 user_inactive for an inactive caller, and stores nothing", async () => {
    const token = await registeredCaller(backend, "inactive-store-uid");
    await setInactive(db(), "inactive-store-uid");
    const before = await snapshotTables(db());
    const { status, body } = await store(token, tokenBody({ dexcom_user_id: "dexcom-account-inactive" }));
    expect(status).toBe(403);
    expect(body.error).toBe("user_inactive");
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("answers 401 missing_token without an Authorization header", async () => {
    const { status, body } = await backend.call("dexcom-tokens", { method: "POST", json: tokenBody() });
    expect(status).toBe(401);
    expect(body.error).toBe("missing_token");
  });
});

describe("GET /dexcom-tokens", () => {
  it("answers {connected: false, token: null} before any token is stored", async () => {
    const token = await registeredCaller(backend, "status-empty-uid");
    const { status, body } = await backend.call("dexcom-tokens", { token });
    expect(status).toBe(200);
    expect(body).toEqual({ connected: false, token: null });
  });

  it("answers {connected: true, token} with the active token as POST answered it", async () => {
    const token = await registeredCaller(backend, "status-full-uid");
    await store(token);
    const stored = await store(token, tokenBody({ scope: "newest" }));
    const { status, body } = await backend.call("dexcom-tokens", { token });
    expect(status).toBe(200);
    expect(body).toEqual({ connected: true, token: stored.body.token });
  });

  it("counts a legacy token with a NULL is_revoked as active", async () => {
    const token = await registeredCaller(backend, "status-null-uid");
    const [user] = await db().query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = 'status-null-uid'");
    const legacyId = await insertToken(db(), user!.id, { is_revoked: null });
    const { body } = await backend.call("dexcom-tokens", { token });
    expect(body.connected).toBe(true);
    expect(body.token.id).toBe(legacyId);
  });

  it("answers {connected: false} after DELETE", async () => {
    const token = await registeredCaller(backend, "status-revoked-uid");
    await store(token);
    await backend.call("dexcom-tokens", { method: "DELETE", token });
    const { body } = await backend.call("dexcom-tokens", { token });
    expect(body).toEqual({ connected: false, token: null });
  });

  it("answers 404 user_not_found when the caller did not POST /users", async () => {
    const token = await backend.token("unregistered-status-uid");
    const { status, body } = await backend.call("dexcom-tokens", { token });
    expect(status).toBe(404);
    expect(body.error).toBe("user_not_found");
  });

  it("answers 403 user_inactive for an inactive caller", async () => {
    const token = await registeredCaller(backend, "inactive-status-uid");
    await setInactive(db(), "inactive-status-uid");
    const { status, body } = await backend.call("dexcom-tokens", { token });
    expect(status).toBe(403);
    expect(body.error).toBe("user_inactive");
  });
});

describe("DELETE /dexcom-tokens", () => {
  it("answers {revoked: 1}, then {revoked: 0} when repeated", async () => {
    const token = await registeredCaller(backend, "revoke-twice-uid");
    await store(token);
    const first = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ revoked: 1 });
    const second = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ revoked: 0 });
  });

  it("marks the tokens revoked with revoked_at, and keeps the rows", async () => {
    const token = await registeredCaller(backend, "revoke-rows-uid");
    await store(token);
    await store(token);
    await backend.call("dexcom-tokens", { method: "DELETE", token });
    const rows = await tokenRowsOf("revoke-rows-uid");
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row).toMatchObject({ is_revoked: true, revoked_at: expect.any(Date) });
  });

  it("answers {revoked: 0} for a caller who never stored a token", async () => {
    const token = await registeredCaller(backend, "revoke-none-uid");
    const { status, body } = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(status).toBe(200);
    expect(body).toEqual({ revoked: 0 });
  });

  it("leaves other users' tokens alone", async () => {
    const token = await registeredCaller(backend, "revoke-mine-uid");
    const other = await registeredCaller(backend, "revoke-theirs-uid");
    await store(token);
    await store(other);
    await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect((await backend.call("dexcom-tokens", { token: other })).body.connected).toBe(true);
  });

  it("answers 404 user_not_found when the caller did not POST /users", async () => {
    const token = await backend.token("unregistered-revoke-uid");
    const { status, body } = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(status).toBe(404);
    expect(body.error).toBe("user_not_found");
  });

  it("answers 403 user_inactive for an inactive caller and revokes nothing", async () => {
    const token = await registeredCaller(backend, "inactive-revoke-uid");
    await store(token);
    await setInactive(db(), "inactive-revoke-uid");
    const { status, body } = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(status).toBe(403);
    expect(body.error).toBe("user_inactive");
    const rows = await tokenRowsOf("inactive-revoke-uid");
    expect(rows.map((row) => row.is_revoked)).toEqual([false]);
  });
});
