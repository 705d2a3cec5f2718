import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import { registeredCaller, snapshotTables, tokenBody } from "./support/contract-helpers.ts";

let backend: TestBackend;
beforeAll(async () => (backend = await startTestBackend()));
afterAll(() => backend.close());

const db = () => backend.database.db;

describe("parallel POST /dexcom-tokens for one user", () => {
  const PARALLEL = 50;
  let statuses: number[];
  let ids: number[];

  beforeAll(async () => {
    const token = await registeredCaller(backend, "racing-store-uid");
    const responses = await Promise.all(
      Array.from({ length: PARALLEL }, (_, n) =>
        backend.call("dexcom-tokens", { method: "POST", token, json: tokenBody({ access_token: `racing-access-${n}` }) })),
    );
    statuses = responses.map((response) => response.status);
    ids = responses.map((response) => response.body?.token?.id);
  });

  it("answers 201 to every request", () => {
    expect(statuses).toEqual(Array(PARALLEL).fill(201));
  });

  it("stores one row per request", async () => {
    expect(new Set(ids).size).toBe(PARALLEL);
    const rows = await db().query(
      "SELECT t.id FROM dexcom_tokens t JOIN users u ON u.id = t.user_id WHERE u.firebase_uid = 'racing-store-uid'",
    );
    expect(rows).toHaveLength(PARALLEL);
  });

  it("leaves exactly one active token, the newest", async () => {
    const active = await db().query<{ id: number }>(
      `SELECT t.id FROM dexcom_tokens t JOIN users u ON u.id = t.user_id
       WHERE u.firebase_uid = 'racing-store-uid' AND t.is_revoked IS NOT TRUE`,
    );
    expect(active).toHaveLength(1);
    expect(active[0]!.id).toBe(Math.max(...ids));
  });

  it("gives every revoked token a revoked_at", async () => {
    const missing = await db().query(
      `SELECT t.id FROM dexcom_tokens t JOIN users u ON u.id = t.user_id
       WHERE u.firebase_uid = 'racing-store-uid' AND t.is_revoked AND t.revoked_at IS NULL`,
    );
    expect(missing).toHaveLength(0);
  });
});

describe("parallel first POST /users for one new user", () => {
  const PARALLEL = 20;
  let statuses: number[];
  let userIds: number[];

  beforeAll(async () => {
    const token = await backend.token("racing-register-uid", { email: "racing.register@example.com" });
    const responses = await Promise.all(
      Array.from({ length: PARALLEL }, () => backend.call("users", { method: "POST", token })),
    );
    statuses = responses.map((response) => response.status);
    userIds = responses.map((response) => response.body?.user?.id);
  });

  it("answers 201 exactly once and 200 to the rest", () => {
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 200)).toHaveLength(PARALLEL - 1);
  });

  it("creates one row, which every answer names", async () => {
    const rows = await db().query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = 'racing-register-uid'");
    expect(rows).toHaveLength(1);
    expect(new Set(userIds)).toEqual(new Set([rows[0]!.id]));
  });
});

describe("parallel POST /dexcom-tokens claiming one Dexcom account from different users", () => {
  const PARALLEL = 10;
  let statuses: number[];
  let before: Awaited<ReturnType<typeof snapshotTables>>;

  beforeAll(async () => {
    const tokens = await Promise.all(
      Array.from({ length: PARALLEL }, (_, n) => registeredCaller(backend, `claimant-${n}-uid`)),
    );
    before = await snapshotTables(db());
    const responses = await Promise.all(
      tokens.map((token) =>
        backend.call("dexcom-tokens", { method: "POST", token, json: tokenBody({ dexcom_user_id: "contested-dexcom-account" }) })),
    );
    statuses = responses.map((response) => response.status);
  });

  it("lets exactly one win (201) and answers 409 dexcom_account_in_use to the rest", () => {
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(PARALLEL - 1);
  });

  it("stores one token and sets the account on one user only", async () => {
    const after = await snapshotTables(db());
    expect(after.dexcom_tokens.length - before.dexcom_tokens.length).toBe(1);
    const holders = await db().query("SELECT id FROM users WHERE dexcom_user_id = 'contested-dexcom-account'");
    expect(holders).toHaveLength(1);
  });
});

// The race above is narrow (a first request commits between another's look by uid and its look by
// email), so it is also run many times straight against the database function.
describe("many rounds of racing first registrations in SQL", () => {
  const ROUNDS = 100;
  const PARALLEL = 20;

  it("creates the user once per round and finds it for every other request", async () => {
    const outcomes = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const uid = `sql-race-${round}`;
      const results = await Promise.all(
        Array.from({ length: PARALLEL }, () =>
          db().query<{ outcome: string }>("SELECT outcome FROM dms.register_user($1, $2, true)", [uid, `${uid}@example.com`])),
      );
      for (const [row] of results) outcomes.set(row!.outcome, (outcomes.get(row!.outcome) ?? 0) + 1);
    }
    expect(Object.fromEntries(outcomes)).toEqual({ created: ROUNDS, unchanged: ROUNDS * (PARALLEL - 1) });
  });
});
