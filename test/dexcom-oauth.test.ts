import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registeredCaller } from "./support/contract-helpers.ts";
import {
  callback,
  type DexcomBackend,
  redirectParams,
  startAuthorization,
  startDexcomBackend,
  tokenRows,
} from "./support/dexcom-backend.ts";
import { egvSeries } from "./support/fake-dexcom.ts";

let backend: DexcomBackend;
beforeAll(async () => (backend = await startDexcomBackend()));
afterAll(() => backend.close());
const db = () => backend.database.db;

describe("the whole flow", () => {
  it("start, approve, callback: tokens stored encrypted, dexcom_user_id set, 302 connected; then egvs returns Dexcom's body", async () => {
    const token = await registeredCaller(backend, "flow-uid");
    const started = await backend.call("dexcom-oauth", { method: "POST", path: "/start", token });
    expect(started.status).toBe(200);
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
    expect(answer.status).toBe(302);
    expect(answer.headers.get("location")).toBe("dms://dexcom-connected?status=connected");

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
    expect(egvs.status).toBe(200);
    expect(egvs.body.userId).toBe(user.dexcomUserId);
    expect(egvs.body.records.map((r: { recordId: string }) => r.recordId)).toEqual(user.egvs.slice(0, 12).map((r) => r.recordId));
  });
});

describe("a callback that fails stores nothing", () => {
  it("an unknown state", async () => {
    const token = await registeredCaller(backend, "unknown-state-uid");
    const user = backend.dexcom.addUser();
    const exchanges = backend.dexcom.counts.exchange;
    const answer = await callback(backend, { code: backend.dexcom.authorize(user), state: "not-a-state-we-issued" });
    expect(answer.status).toBe(302);
    expect(redirectParams(answer.headers.get("location"))).toEqual({ status: "error", reason: "invalid_state" });
    expect(backend.dexcom.counts.exchange).toBe(exchanges);
    expect(await tokenRows(db(), "unknown-state-uid")).toEqual([]);
    void token;
  });

  it("a replayed state", async () => {
    const token = await registeredCaller(backend, "replay-uid");
    const state = await startAuthorization(backend, token);
    const user = backend.dexcom.addUser();
    expect(redirectParams((await callback(backend, { code: backend.dexcom.authorize(user), state })).headers.get("location")).status)
      .toBe("connected");
    const again = await callback(backend, { code: backend.dexcom.authorize(user), state });
    expect(redirectParams(again.headers.get("location"))).toEqual({ status: "error", reason: "invalid_state" });
    expect(await tokenRows(db(), "replay-uid")).toHaveLength(1);
  });
});
