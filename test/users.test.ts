import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import {
  ERROR_KEYS,
  ISO_UTC,
  registeredCaller,
  setInactive,
  snapshotTables,
  tokenBody,
  USER_KEYS,
} from "./support/contract-helpers.ts";
import { insertUser } from "./support/rows.ts";

let backend: TestBackend;
beforeAll(async () => (backend = await startTestBackend()));
afterAll(() => backend.close());

const db = () => backend.database.db;

describe("POST /users", () => {
  it("registers a new caller with 201, then refreshes with 200", async () => {
    const token = await backend.token("alice-uid", { email: "Alice@Example.COM", email_verified: true });
    const created = await backend.call("users", { method: "POST", token });
    expect(created.status).toBe(201);
    expect(created.body.user).toMatchObject({ firebase_uid: "alice-uid", email: "alice@example.com", dexcom_user_id: null, is_active: true });
    const again = await backend.call("users", { method: "POST", token });
    expect(again.status).toBe(200);
    expect(again.body.user.id).toBe(created.body.user.id);
  });

  it("answers {user} with exactly the contract's fields and UTC ISO timestamps", async () => {
    const token = await backend.token("shape-uid", { email: "shape@example.com" });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(201);
    expect(Object.keys(body)).toEqual(["user"]);
    expect(Object.keys(body.user).sort()).toEqual(USER_KEYS);
    expect(body.user.id).toEqual(expect.any(Number));
    expect(body.user.created_at).toMatch(ISO_UTC);
    expect(body.user.updated_at).toMatch(ISO_UTC);
  });

  it("stores the token's email lower-cased", async () => {
    const token = await backend.token("case-uid", { email: "MiXeD.Case@Example.ORG" });
    const { body } = await backend.call("users", { method: "POST", token });
    expect(body.user.email).toBe("mixed.case@example.org");
    const [row] = await db().query<{ email: string }>("SELECT email FROM users WHERE firebase_uid = 'case-uid'");
    expect(row!.email).toBe("mixed.case@example.org");
  });

  it("stores a null email when the token has none", async () => {
    const token = await backend.token("no-email-uid", { email: undefined });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(201);
    expect(body.user.email).toBeNull();
  });

  it("updates a changed email on refresh (200)", async () => {
    const first = await backend.token("changer-uid", { email: "old.address@example.com" });
    const created = await backend.call("users", { method: "POST", token: first });
    const second = await backend.token("changer-uid", { email: "New.Address@example.com" });
    const refreshed = await backend.call("users", { method: "POST", token: second });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.user).toMatchObject({ id: created.body.user.id, email: "new.address@example.com" });
    const [row] = await db().query<{ email: string }>("SELECT email FROM users WHERE firebase_uid = 'changer-uid'");
    expect(row!.email).toBe("new.address@example.com");
  });

  it("leaves updated_at alone when nothing changed", async () => {
    const token = await backend.token("steady-uid", { email: "steady@example.com" });
    const created = await backend.call("users", { method: "POST", token });
    const again = await backend.call("users", { method: "POST", token });
    expect(again.status).toBe(200);
    expect(again.body.user.updated_at).toBe(created.body.user.updated_at);
  });

  it("adopts a pre-Firebase row with the same email when the email is verified (200)", async () => {
    const legacyId = await insertUser(db(), { firebase_uid: null, email: "legacy.verified@example.com" });
    const token = await backend.token("adopter-uid", { email: "Legacy.Verified@example.com", email_verified: true });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(200);
    expect(body.user).toMatchObject({ id: legacyId, firebase_uid: "adopter-uid", email: "legacy.verified@example.com" });
    const rows = await db().query("SELECT id FROM users WHERE email = 'legacy.verified@example.com'");
    expect(rows).toHaveLength(1);
  });

  it("adopts a pre-Firebase row whose email differs only in case, storing it lower-cased", async () => {
    const legacyId = await insertUser(db(), { firebase_uid: null, email: "Mixed.Case@Example.com" });
    const token = await backend.token("mixed-case-uid", { email: "mixed.case@example.com", email_verified: true });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(200);
    expect(body.user).toMatchObject({ id: legacyId, firebase_uid: "mixed-case-uid", email: "mixed.case@example.com" });
  });

  it("treats an email another Firebase account holds in another case as taken (409 email_in_use)", async () => {
    await insertUser(db(), { firebase_uid: "old-case-holder", email: "Case.Holder@Example.com" });
    const before = await snapshotTables(db());
    const token = await backend.token("case-squatter", { email: "case.holder@example.com" });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect([status, body.error]).toEqual([409, "email_in_use"]);
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("refuses to adopt a pre-Firebase row when the email is not verified (409 email_in_use)", async () => {
    const legacyId = await insertUser(db(), { firebase_uid: null, email: "legacy.unverified@example.com" });
    const before = await snapshotTables(db());
    const token = await backend.token("squatter-uid", { email: "legacy.unverified@example.com", email_verified: false });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(409);
    expect(body.error).toBe("email_in_use");
    expect(await snapshotTables(db())).toEqual(before);
    const [row] = await db().query<{ firebase_uid: string | null }>("SELECT firebase_uid FROM users WHERE id = $1", [legacyId]);
    expect(row!.firebase_uid).toBeNull();
  });

  it("refuses an email held by another Firebase account (409 email_in_use), storing nothing", async () => {
    await registeredCaller(backend, "holder-uid", { email: "taken@example.com" });
    const before = await snapshotTables(db());
    const token = await backend.token("intruder-uid", { email: "TAKEN@example.com", email_verified: true });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(409);
    expect(body.error).toBe("email_in_use");
    expect(Object.keys(body).sort()).toEqual(ERROR_KEYS);
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("refuses to change a caller's email to one another account holds (409 email_in_use)", async () => {
    await registeredCaller(backend, "owner-uid", { email: "owned@example.com" });
    await registeredCaller(backend, "switcher-uid", { email: "switcher@example.com" });
    const token = await backend.token("switcher-uid", { email: "owned@example.com" });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(409);
    expect(body.error).toBe("email_in_use");
    const [row] = await db().query<{ email: string }>("SELECT email FROM users WHERE firebase_uid = 'switcher-uid'");
    expect(row!.email).toBe("switcher@example.com");
  });

  it("answers 403 user_inactive to an inactive caller and changes nothing", async () => {
    await registeredCaller(backend, "inactive-post-uid");
    await setInactive(db(), "inactive-post-uid");
    const before = await snapshotTables(db());
    const token = await backend.token("inactive-post-uid", { email: "changed.while.inactive@example.com" });
    const { status, body } = await backend.call("users", { method: "POST", token });
    expect(status).toBe(403);
    expect(body.error).toBe("user_inactive");
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("accepts an ignored JSON object body", async () => {
    const token = await backend.token("body-uid");
    const { status, body } = await backend.call("users", { method: "POST", token, json: { anything: ["goes", 1, null] } });
    expect(status).toBe(201);
    expect(body.user.firebase_uid).toBe("body-uid");
  });

  it("answers 401 missing_token without an Authorization header", async () => {
    const { status, body } = await backend.call("users", { method: "POST" });
    expect(status).toBe(401);
    expect(body.error).toBe("missing_token");
  });
});

describe("GET /users", () => {
  it("answers 200 {user} for a registered caller", async () => {
    const token = await registeredCaller(backend, "getter-uid");
    const { status, body } = await backend.call("users", { token });
    expect(status).toBe(200);
    expect(Object.keys(body.user).sort()).toEqual(USER_KEYS);
    expect(body.user).toMatchObject({ firebase_uid: "getter-uid", email: "getter-uid@example.com", is_active: true });
  });

  it("answers 404 user_not_found for a caller who never registered", async () => {
    const token = await backend.token("stranger-uid");
    const { status, body } = await backend.call("users", { token });
    expect(status).toBe(404);
    expect(body.error).toBe("user_not_found");
  });

  it("answers 403 user_inactive for an inactive caller", async () => {
    const token = await registeredCaller(backend, "inactive-get-uid");
    await setInactive(db(), "inactive-get-uid");
    const { status, body } = await backend.call("users", { token });
    expect(status).toBe(403);
    expect(body.error).toBe("user_inactive");
  });

  it("answers 401 missing_token without an Authorization header", async () => {
    const { status, body } = await backend.call("users");
    expect(status).toBe(401);
    expect(body.error).toBe("missing_token");
  });
});

describe("DELETE /users", () => {
  it("answers 204 with an empty body, then 404 user_not_found", async () => {
    const token = await registeredCaller(backend, "leaver-uid");
    const deleted = await backend.call("users", { method: "DELETE", token });
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe("");
    const again = await backend.call("users", { method: "DELETE", token });
    expect(again.status).toBe(404);
    expect(again.body.error).toBe("user_not_found");
    const get = await backend.call("users", { token });
    expect(get.status).toBe(404);
  });

  it("deletes the caller's tokens by cascade", async () => {
    const token = await registeredCaller(backend, "cascade-uid");
    for (const n of [1, 2]) {
      const stored = await backend.call("dexcom-tokens", { method: "POST", token, json: tokenBody({ access_token: `a${n}` }) });
      expect(stored.status).toBe(201);
    }
    const [user] = await db().query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = 'cascade-uid'");
    expect(await db().query("SELECT id FROM dexcom_tokens WHERE user_id = $1", [user!.id])).toHaveLength(2);
    expect((await backend.call("users", { method: "DELETE", token })).status).toBe(204);
    expect(await db().query("SELECT id FROM users WHERE id = $1", [user!.id])).toHaveLength(0);
    expect(await db().query("SELECT id FROM dexcom_tokens WHERE user_id = $1", [user!.id])).toHaveLength(0);
  });

  it("deletes only the caller", async () => {
    const token = await registeredCaller(backend, "deleter-uid");
    await registeredCaller(backend, "bystander-uid");
    expect((await backend.call("users", { method: "DELETE", token })).status).toBe(204);
    expect(await db().query("SELECT id FROM users WHERE firebase_uid = 'bystander-uid'")).toHaveLength(1);
  });

  it("lets a deleted caller register again as new (201)", async () => {
    const token = await registeredCaller(backend, "returner-uid");
    await backend.call("users", { method: "DELETE", token });
    expect((await backend.call("users", { method: "POST", token })).status).toBe(201);
  });
});
