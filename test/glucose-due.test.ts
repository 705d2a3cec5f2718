// POST /dexcom-sync/due, the scheduler's call (contract, "glucose history"), on a real Postgres with
// the fake Dexcom behind msw: its secret, which users it syncs and in what order, what it answers,
// the hourly call budget shared with the other Dexcom endpoints (and dms.spend_dexcom_call under
// concurrency), overlapping invocations, and users whose refresh Dexcom refused.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Queryable } from "../shared/db/database.ts";
import { DUE_CONCURRENCY } from "../shared/glucose/due.ts";
import { migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { ERROR_KEYS, registeredCaller } from "./support/contract-helpers.ts";
import {
  callback,
  type DexcomBackend,
  firstSyncDone,
  redirectParams,
  startAuthorization,
  startDexcomBackend,
  tokenRows,
} from "./support/dexcom-backend.ts";
import { type EgvRecord, egvSeries, type FakeDexcom, type FakeUser } from "./support/fake-dexcom.ts";
import { eventually } from "./support/processes.ts";

const SECRET = "due-secret-0123456789abcdefXYZ";
const MINUTE = 60_000;
const SUMMARY_KEYS = ["deferred", "failed", "new_readings", "users"];

// ---------------------------------------------------------------------------------------------
// Helpers

/** What the fake Dexcom was asked, by access token, and which access tokens it fails (503). */
interface DexcomWatch {
  /** Data calls (dataRange, egvs) made with this access token. */
  dataCalls(accessToken: string): { dataRange: number; egvs: number };
  /** Every data call of these tokens answers 503, as Dexcom does for one account at times. */
  failing: Set<string>;
  /** Data calls of these tokens wait (Dexcom being slow for them) until release(). */
  holding: Set<string>;
  /** How many calls are waiting now. */
  held(): number;
  release(): void;
}

/**
 * Wraps the fake's handler (msw calls it through the object) so that calls can be told apart by
 * user: the fake's own failNext is global, and the scheduler works on several users at once.
 */
function watch(dexcom: FakeDexcom): DexcomWatch {
  const calls: { path: string; bearer: string | null }[] = [];
  const failing = new Set<string>();
  const holding = new Set<string>();
  let waiting: (() => void)[] = [];
  const original = dexcom.handle.bind(dexcom);
  dexcom.handle = async (request: Request) => {
    const path = new URL(request.url).pathname;
    const bearer = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "")?.[1] ?? null;
    calls.push({ path, bearer });
    if (bearer !== null && failing.has(bearer)) return new Response('{"error":"unavailable"}', { status: 503 });
    if (bearer !== null && holding.has(bearer)) await new Promise<void>((resolve) => waiting.push(resolve));
    return original(request);
  };
  return {
    failing,
    holding,
    held: () => waiting.length,
    release: () => {
      holding.clear();
      for (const resolve of waiting) resolve();
      waiting = [];
    },
    dataCalls: (accessToken) => ({
      dataRange: calls.filter((c) => c.bearer === accessToken && c.path.endsWith("/dataRange")).length,
      egvs: calls.filter((c) => c.bearer === accessToken && c.path.endsWith("/egvs")).length,
    }),
  };
}

/** Every call the fake Dexcom answered (token, dataRange, egvs), faults included. */
const dexcomCalls = (dexcom: FakeDexcom) => dexcom.counts.token + dexcom.counts.dataRange + dexcom.counts.egvs;

/** Readings every 5 minutes, the last of them an hour ago: all of them inside a first sync's window. */
const recentSeries = (count: number): EgvRecord[] => egvSeries(new Date(Date.now() - MINUTE * (60 + 5 * count)), count);

function due(backend: DexcomBackend, authorization: string | null = `Bearer ${SECRET}`) {
  return backend.call("dexcom-sync", {
    method: "POST",
    path: "/due",
    headers: authorization === null ? {} : { authorization },
  });
}

async function userIdOf(db: Queryable, uid: string): Promise<number> {
  const [row] = await db.query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [uid]);
  return row!.id;
}

interface Connected {
  uid: string;
  token: string;
  userId: number;
  user: FakeUser;
  /** The access token the backend stored (the fake knows it; it lives 2 hours). */
  access: string;
}

/**
 * A registered caller connected by POST /dexcom-tokens with a pair the fake issued: no Dexcom call
 * and no sync (only the OAuth callback syncs by itself), so the user is due and never synced.
 */
async function connectWithTokens(
  backend: DexcomBackend,
  uid: string,
  records: EgvRecord[] = [],
  overrides: Record<string, unknown> = {},
): Promise<Connected> {
  const token = await registeredCaller(backend, uid);
  const user = backend.dexcom.addUser();
  user.egvs.push(...records);
  const pair = backend.dexcom.issuePair(user);
  const stored = await backend.call("dexcom-tokens", {
    method: "POST",
    token,
    json: { ...pair, dexcom_user_id: user.dexcomUserId, ...overrides },
  });
  expect(stored.status, stored.text).toBe(201);
  return { uid, token, userId: await userIdOf(backend.database.db, uid), user, access: pair.access_token };
}

/** Start, approval and callback for this caller and Dexcom account; waits for the background first sync. */
async function connectViaCallback(backend: DexcomBackend, token: string, user: FakeUser): Promise<void> {
  const state = await startAuthorization(backend, token);
  const answer = await callback(backend, { code: backend.dexcom.authorize(user), state });
  expect(answer.status).toBe(302);
  expect(redirectParams(answer.headers.get("location")).status).toBe("connected");
}

interface StateRow {
  synced_at: Date | null;
  last_attempt_at: Date | null;
  due_later: boolean;
  failures: number;
  last_error: string | null;
  needs_reauthorization: boolean;
}

async function syncState(db: Queryable, userId: number): Promise<StateRow | undefined> {
  const [row] = await db.query<StateRow>(
    `SELECT synced_at, last_attempt_at, next_due_at > now() AS due_later, failures, last_error, needs_reauthorization
     FROM dexcom_sync_state WHERE user_id = $1`,
    [userId],
  );
  return row;
}

async function readingCount(db: Queryable, userId: number): Promise<number> {
  const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM glucose_readings WHERE user_id = $1", [userId]);
  return row!.n;
}

async function makeDue(db: Queryable, userIds: number[]): Promise<void> {
  await db.query("UPDATE dexcom_sync_state SET next_due_at = now() - interval '1 minute' WHERE user_id = ANY($1::int[])", [userIds]);
}

/**
 * Every user so far is made not due for a day, so that each test sees only its own due users
 * (the scheduler syncs whoever in the database is due).
 */
async function parkEveryone(db: Queryable): Promise<void> {
  await db.query(
    `INSERT INTO dexcom_sync_state (user_id, next_due_at) SELECT id, now() + interval '1 day' FROM users
     ON CONFLICT (user_id) DO UPDATE SET next_due_at = excluded.next_due_at`,
  );
}

function expectSummary(body: unknown): asserts body is { users: number; new_readings: number; failed: number; deferred: number } {
  expect(Object.keys(body as object).sort()).toEqual(SUMMARY_KEYS);
  for (const key of SUMMARY_KEYS) expect(Number.isInteger((body as Record<string, unknown>)[key])).toBe(true);
}

// ---------------------------------------------------------------------------------------------

describe("POST /dexcom-sync/due without DEXCOM_SYNC_SECRET", () => {
  let backend: DexcomBackend;
  beforeAll(async () => (backend = await startDexcomBackend()));
  afterAll(() => backend?.close());

  it("answers 503 not_configured, whatever it is sent, and syncs nothing", async () => {
    const waiting = await connectWithTokens(backend, "unconfigured-due-user", recentSeries(3));
    for (const authorization of [null, `Bearer ${SECRET}`, "Bearer ", "Bearer anything-at-all-0123456789"]) {
      const answer = await due(backend, authorization);
      expect(answer.status, String(authorization)).toBe(503);
      expect(answer.body.error).toBe("not_configured");
      expect(Object.keys(answer.body).sort()).toEqual(ERROR_KEYS);
    }
    expect(dexcomCalls(backend.dexcom)).toBe(0);
    expect(await syncState(backend.database.db, waiting.userId)).toBeUndefined();
  });
});

describe("POST /dexcom-sync/due", () => {
  let backend: DexcomBackend;
  let dexcom: DexcomWatch;
  const db = () => backend.database.db;

  beforeAll(async () => {
    backend = await startDexcomBackend({ DEXCOM_SYNC_SECRET: SECRET });
    dexcom = watch(backend.dexcom);
  });
  afterAll(() => backend?.close());
  beforeEach(() => parkEveryone(db()));

  it("answers 401 invalid_token for a missing or wrong secret and syncs nothing", async () => {
    const waiting = await connectWithTokens(backend, "due-auth-waiting", recentSeries(3));
    const lastChar = SECRET.at(-1) === "Z" ? "Y" : "Z";
    const wrong: (string | null)[] = [
      null,
      "",
      "Bearer ",
      `Bearer ${SECRET.slice(0, -1)}${lastChar}`, // differs only in its last character
      `Bearer ${SECRET}0`, // one character longer
      `Bearer ${SECRET.slice(0, -1)}`, // one shorter
      `Bearer ${SECRET}${SECRET}`,
      SECRET, // no scheme
      `Basic ${SECRET}`,
      `Bearer ${SECRET.toLowerCase()}`, // the secret itself is case-sensitive
    ];
    const callsBefore = dexcomCalls(backend.dexcom);
    for (const authorization of wrong) {
      const answer = await due(backend, authorization);
      expect(answer.status, String(authorization)).toBe(401);
      expect(answer.body.error).toBe("invalid_token");
      expect(Object.keys(answer.body).sort()).toEqual(ERROR_KEYS);
      expect(answer.text).not.toContain(SECRET);
    }
    expect(dexcomCalls(backend.dexcom)).toBe(callsBefore);
    expect(await syncState(db(), waiting.userId)).toBeUndefined();
    expect(await readingCount(db(), waiting.userId)).toBe(0);
  });

  it("takes the auth scheme in any case (RFC 9110: it is case-insensitive)", async () => {
    const waiting = await connectWithTokens(backend, "due-auth-lowercase", recentSeries(4));
    const answer = await due(backend, `bearer ${SECRET}`);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ users: 1, new_readings: 4, failed: 0, deferred: 0 });
    expect(await readingCount(db(), waiting.userId)).toBe(4);
  });

  it("syncs every due user (never synced, or next_due_at passed), counts failures, leaves the others", async () => {
    // Two connected by POST /dexcom-tokens, never synced: due.
    const fresh1 = await connectWithTokens(backend, "due-fresh-1", recentSeries(12));
    const fresh2 = await connectWithTokens(backend, "due-fresh-2", recentSeries(12));
    // One whose Dexcom account fails (503 on every data call): tried, and failed.
    const failing = await connectWithTokens(backend, "due-failing", recentSeries(12));
    dexcom.failing.add(failing.access);

    // One synced once by the callback (12 readings), with 3 new readings at Dexcom since, made due.
    const againUid = "due-again";
    const againToken = await registeredCaller(backend, againUid);
    const again = backend.dexcom.addUser();
    again.egvs.push(...egvSeries(new Date(Date.now() - 3 * 60 * MINUTE), 12));
    await connectViaCallback(backend, againToken, again);
    await firstSyncDone(db(), againUid);
    const againId = await userIdOf(db(), againUid);
    expect(await readingCount(db(), againId)).toBe(12);
    again.egvs.push(...egvSeries(new Date(Date.now() - 60 * MINUTE), 3));

    // One synced by the callback whose next sync is not due yet: not tried, though Dexcom has more.
    const laterUid = "due-not-yet";
    const laterToken = await registeredCaller(backend, laterUid);
    const later = backend.dexcom.addUser();
    later.egvs.push(...egvSeries(new Date(Date.now() - 3 * 60 * MINUTE), 6));
    await connectViaCallback(backend, laterToken, later);
    await firstSyncDone(db(), laterUid);
    const laterId = await userIdOf(db(), laterUid);
    later.egvs.push(...egvSeries(new Date(Date.now() - 60 * MINUTE), 3));

    // parkEveryone ran before these were synced: only now is the state as described above.
    await makeDue(db(), [againId]);
    const laterBefore = await syncState(db(), laterId);
    expect(laterBefore?.due_later).toBe(true);

    const answer = await due(backend);
    expect(answer.status, answer.text).toBe(200);
    expectSummary(answer.body);
    // The failed user counts in "users" and in "failed"; new_readings counts readings stored for
    // the first time only (the re-synced user's overlap of old readings is not new).
    expect(answer.body).toEqual({ users: 4, new_readings: 12 + 12 + 3, failed: 1, deferred: 0 });

    expect(await readingCount(db(), fresh1.userId)).toBe(12);
    expect(await readingCount(db(), fresh2.userId)).toBe(12);
    expect(await readingCount(db(), againId)).toBe(15);
    expect(await readingCount(db(), failing.userId)).toBe(0);
    for (const userId of [fresh1.userId, fresh2.userId, againId]) {
      const state = await syncState(db(), userId);
      expect(state).toMatchObject({ failures: 0, last_error: null, due_later: true });
      expect(state!.synced_at).not.toBeNull();
    }
    // The failure is recorded and backs the user off: not due again at once.
    const failed = await syncState(db(), failing.userId);
    expect(failed).toMatchObject({ failures: 1, synced_at: null, due_later: true });
    expect(failed!.last_error).not.toBeNull();
    expect(dexcom.dataCalls(failing.access).dataRange).toBe(1);

    // The user not due was not even tried.
    const laterAfter = await syncState(db(), laterId);
    expect(laterAfter!.last_attempt_at).toEqual(laterBefore!.last_attempt_at);
    expect(laterAfter!.synced_at).toEqual(laterBefore!.synced_at);
    expect(await readingCount(db(), laterId)).toBe(6);

    // Each was synced once: the never-synced asked dataRange then egvs, once each.
    for (const user of [fresh1, fresh2]) expect(dexcom.dataCalls(user.access)).toEqual({ dataRange: 1, egvs: 1 });

    // Right after, nobody is due: the synced wait for the interval, the failed one backs off.
    const callsBefore = dexcomCalls(backend.dexcom);
    const next = await due(backend);
    expect(next.status).toBe(200);
    expect(next.body).toEqual({ users: 0, new_readings: 0, failed: 0, deferred: 0 });
    expect(dexcomCalls(backend.dexcom)).toBe(callsBefore);
  });

  it("never syncs a user twice when two invocations overlap", async () => {
    // Run A starts with the users who have waited longest; Dexcom is slow for them, so each of A's
    // DUE_CONCURRENCY workers is busy while the rest of A's list waits. Run B starts meanwhile (the
    // next minute's cron call) and syncs that rest. When Dexcom answers A, its workers go on with
    // the list it read at its start: those users were synced a moment ago and are not due.
    const slow: Connected[] = [];
    for (let i = 0; i < DUE_CONCURRENCY; i++) slow.push(await connectWithTokens(backend, `due-overlap-slow-${i}`, recentSeries(2)));
    const quick: Connected[] = [];
    for (let i = 0; i < 4; i++) quick.push(await connectWithTokens(backend, `due-overlap-quick-${i}`, recentSeries(2)));
    // The slow users have waited longest (never-synced users wait from their connection).
    for (const user of slow) dexcom.holding.add(user.access);

    const runA = due(backend);
    try {
      expect(await eventually(() => dexcom.held() === DUE_CONCURRENCY, 10_000)).toBe(true);
      const b = await due(backend);
      expect(b.status, b.text).toBe(200);
      expect(b.body).toEqual({ users: quick.length, new_readings: 2 * quick.length, failed: 0, deferred: 0 });
    } finally {
      dexcom.release();
    }
    const a = await runA;
    expect(a.status, a.text).toBe(200);
    expectSummary(a.body);

    // Each user was synced once: one dataRange and one egvs with its token, whichever run did it.
    const counts = [...slow, ...quick].map((user) => ({ uid: user.uid, ...dexcom.dataCalls(user.access) }));
    expect(counts).toEqual([...slow, ...quick].map((user) => ({ uid: user.uid, dataRange: 1, egvs: 1 })));
    expect(a.body).toEqual({ users: slow.length, new_readings: 2 * slow.length, failed: 0, deferred: 0 });
    for (const user of [...slow, ...quick]) expect(await readingCount(db(), user.userId)).toBe(2);
  });

  it("never syncs a user twice when two invocations start together", async () => {
    // More users than one run works on at once, so both walk the same due list for a while.
    const users = 2 * DUE_CONCURRENCY + 8;
    const connected: Connected[] = [];
    for (let i = 0; i < users; i++) connected.push(await connectWithTokens(backend, `due-together-${i}`, recentSeries(2)));

    const [a, b] = await Promise.all([due(backend), due(backend)]);
    expect(a.status, a.text).toBe(200);
    expect(b.status, b.text).toBe(200);
    expectSummary(a.body);
    expectSummary(b.body);
    const counts = connected.map((user) => ({ uid: user.uid, ...dexcom.dataCalls(user.access) }));
    expect(counts).toEqual(connected.map((user) => ({ uid: user.uid, dataRange: 1, egvs: 1 })));
    expect(a.body.users + b.body.users).toBe(users);
    expect(a.body.new_readings + b.body.new_readings).toBe(2 * users);
    expect(a.body.failed + b.body.failed).toBe(0);
  });

  it("does not try a user whose refresh Dexcom refused until they connect again", async () => {
    // The stored access token expires within 60 s, so the sync refreshes first, with a refresh
    // token Dexcom never issued: invalid_grant.
    const refused = await connectWithTokens(backend, "due-refused", recentSeries(5), {
      refresh_token: "refresh-token-that-dexcom-never-issued",
      expires_in: 30,
    });

    const first = await due(backend);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toEqual({ users: 1, new_readings: 0, failed: 1, deferred: 0 });
    const rows = await tokenRows(db(), refused.uid);
    expect(rows.map((row) => [row.is_revoked, row.revoked_reason])).toEqual([[true, "refresh_rejected"]]);
    const marked = await syncState(db(), refused.userId);
    expect(marked!.needs_reauthorization).toBe(true);

    // Even once its next try is past, it is not due: it has nothing to sync with.
    await makeDue(db(), [refused.userId]);
    const refreshesBefore = backend.dexcom.counts.refresh;
    const callsBefore = dexcomCalls(backend.dexcom);
    const skipped = await due(backend);
    expect(skipped.status).toBe(200);
    expect(skipped.body).toEqual({ users: 0, new_readings: 0, failed: 0, deferred: 0 });
    expect(dexcomCalls(backend.dexcom)).toBe(callsBefore);
    expect(backend.dexcom.counts.refresh).toBe(refreshesBefore);
    expect((await syncState(db(), refused.userId))!.last_attempt_at).toEqual(marked!.last_attempt_at);

    // Connecting again (OAuth): the callback's first sync stores the readings and clears the mark.
    await connectViaCallback(backend, refused.token, refused.user);
    const resynced = await eventually(async () => (await syncState(db(), refused.userId))?.synced_at != null, 15_000);
    expect(resynced).toBe(true);
    expect(await readingCount(db(), refused.userId)).toBe(5);
    expect(await syncState(db(), refused.userId)).toMatchObject({ needs_reauthorization: false, failures: 0, last_error: null });

    // And the scheduler syncs them again once they are due.
    refused.user.egvs.push(...egvSeries(new Date(Date.now() - 30 * MINUTE), 2));
    await makeDue(db(), [refused.userId]);
    const again = await due(backend);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ users: 1, new_readings: 2, failed: 0, deferred: 0 });
    expect(await readingCount(db(), refused.userId)).toBe(7);
  });
});

describe("the hourly call budget (DEXCOM_CALLS_PER_HOUR=5)", () => {
  let backend: DexcomBackend;
  const db = () => backend.database.db;

  beforeAll(async () => {
    backend = await startDexcomBackend({ DEXCOM_SYNC_SECRET: SECRET, DEXCOM_CALLS_PER_HOUR: "5" });
  });
  afterAll(() => backend?.close());
  // Each test starts with the whole budget and only its own due users.
  beforeEach(async () => {
    await db().query("DELETE FROM dexcom_call_budget");
    await parkEveryone(db());
  });

  async function budgetUsed(): Promise<number> {
    const [row] = await db().query<{ n: number }>(
      "SELECT coalesce(sum(calls), 0)::int AS n FROM dexcom_call_budget WHERE minute >= now() - interval '61 minutes'",
    );
    return row!.n;
  }

  it("never makes a sixth call: the scheduler defers, POST /dexcom-sync and the egvs passthrough answer 429", async () => {
    // Six never-synced users with readings: 2 calls each (dataRange, egvs), 12 wanted, 5 allowed.
    const connected: Connected[] = [];
    for (let i = 0; i < 6; i++) connected.push(await connectWithTokens(backend, `budget-user-${i}`, recentSeries(3)));
    const callsBefore = dexcomCalls(backend.dexcom);

    const answer = await due(backend);
    expect(answer.status, answer.text).toBe(200);
    expectSummary(answer.body);
    expect(dexcomCalls(backend.dexcom) - callsBefore).toBe(5);
    expect(await budgetUsed()).toBe(5);
    // Nobody's failure: the budget is not the user's fault. At most two got both their calls.
    expect(answer.body.failed).toBe(0);
    expect(answer.body.users).toBeLessThanOrEqual(2);

    // The caller's own sync: 429 rate_limited with Retry-After in whole seconds.
    // (one never synced: a sync under 60 s ago would be answered "too_soon" without a call)
    const unsynced: Connected[] = [];
    for (const user of connected) if ((await syncState(db(), user.userId))?.synced_at == null) unsynced.push(user);
    expect(unsynced.length).toBeGreaterThan(0);
    const mine = await backend.call("dexcom-sync", { method: "POST", token: unsynced[0]!.token });
    expect(mine.status, mine.text).toBe(429);
    expect(mine.body.error).toBe("rate_limited");
    expect(mine.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
    // The egvs passthrough shares the budget.
    const start = new Date(Date.now() - 3 * 60 * MINUTE).toISOString();
    const end = new Date().toISOString();
    const passthrough = await backend.call("dexcom-egvs", {
      path: `?${new URLSearchParams({ startDate: start, endDate: end })}`,
      token: connected[0]!.token,
    });
    expect(passthrough.status, passthrough.text).toBe(429);
    expect(passthrough.body.error).toBe("rate_limited");
    expect(passthrough.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);

    // A second scheduled run makes no call either.
    const second = await due(backend);
    expect(second.status).toBe(200);
    expect(second.body.users).toBe(0);
    expect(dexcomCalls(backend.dexcom) - callsBefore).toBe(5);
    expect(await budgetUsed()).toBe(5);
  });

  it("counts the due users it left for the budget as deferred", async () => {
    // As above: 12 calls wanted, 5 allowed. Whoever did not get through was left for the budget,
    // also a user who got their dataRange call but not their egvs call.
    for (let i = 0; i < 6; i++) await connectWithTokens(backend, `budget-deferred-${i}`, recentSeries(3));
    const answer = await due(backend);
    expect(answer.status, answer.text).toBe(200);
    expectSummary(answer.body);
    expect(answer.body.failed).toBe(0);
    expect(answer.body.deferred, JSON.stringify(answer.body)).toBeGreaterThan(0);
    expect(answer.body.users + answer.body.deferred, JSON.stringify(answer.body)).toBe(6);
  });

  it("syncs the longest-waiting users first", async () => {
    // Users without readings cost one call each (dataRange says there is nothing), so the budget
    // lets 5 of them through. They were connected in the opposite order of their waiting: the last
    // connected has waited longest, so neither ids nor connection times give the right order.
    const count = 2 * DUE_CONCURRENCY + 8;
    const connected: Connected[] = [];
    for (let i = 0; i < count; i++) connected.push(await connectWithTokens(backend, `budget-order-${i}`, []));
    for (const [i, user] of connected.entries()) {
      await db().query(
        `INSERT INTO dexcom_sync_state (user_id, next_due_at) VALUES ($1, now() - make_interval(mins => $2))
         ON CONFLICT (user_id) DO UPDATE SET next_due_at = excluded.next_due_at`,
        [user.userId, 10 + i],
      );
    }
    const longestWaitingFirst = [...connected].reverse();

    const answer = await due(backend);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.users).toBe(5);
    const synced: number[] = [];
    const attempted: number[] = [];
    for (const [rank, user] of longestWaitingFirst.entries()) {
      const state = await syncState(db(), user.userId);
      if (state?.synced_at != null) synced.push(rank);
      if (state?.last_attempt_at != null) attempted.push(rank);
    }
    expect(synced).toHaveLength(5);
    // Users are started in waiting order, DUE_CONCURRENCY at a time, and a new one only after one
    // finished; with 5 calls, nobody past the first DUE_CONCURRENCY + 5 can have been reached.
    for (const rank of attempted) expect(rank).toBeLessThan(DUE_CONCURRENCY + 5);
  });
});

describe("dms.spend_dexcom_call", () => {
  let database: TestDatabase;
  beforeAll(async () => (database = await migratedPostgres()));
  afterAll(() => database?.drop());

  it("grants exactly the limit to concurrent callers and tells the others how long to wait", async () => {
    const waits = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const [row] = await database.db.query<{ wait: number }>("SELECT dms.spend_dexcom_call(7) AS wait");
        return row!.wait;
      }),
    );
    expect(waits.filter((wait) => wait === 0)).toHaveLength(7);
    const refused = waits.filter((wait) => wait !== 0);
    expect(refused).toHaveLength(13);
    // About an hour: room comes back when the first minute leaves the window.
    for (const wait of refused) {
      expect(Number.isInteger(wait)).toBe(true);
      expect(wait).toBeGreaterThan(58 * 60);
      expect(wait).toBeLessThanOrEqual(61 * 60);
    }
    const [row] = await database.db.query<{ n: number }>("SELECT coalesce(sum(calls), 0)::int AS n FROM dexcom_call_budget");
    expect(row!.n).toBe(7);
  });
});
