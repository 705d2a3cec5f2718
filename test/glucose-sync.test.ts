// The glucose sync (shared/glucose/sync.ts) as the contract's "glucose history" section describes it,
// driven through POST /dexcom-sync (and the OAuth callback's first sync, POST /dexcom-sync/due):
// the backfill in 30-day windows, later syncs fetching only the new part, one row per recordId, an
// interrupted sync resumed, too_soon, one sync for many concurrent callers, the errors, backoff,
// odd records, and what disconnecting and deleting the user keep. The fake Dexcom is served by msw;
// the database is a real Postgres. Every call the backend makes to the fake is recorded here (its
// endpoint and egvs window), so what the sync asked Dexcom for can be checked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLocalServer } from "../shared/app/server.ts";
import { jsonLogger } from "../shared/http/log.ts";
import { BASE_URL, type CallResult, toResult } from "./support/backend.ts";
import { registeredCaller, setInactive } from "./support/contract-helpers.ts";
import {
  callback,
  connectedCaller,
  type DexcomBackend,
  expireStoredToken,
  firstSyncDone,
  redirectParams,
  refreshAtDexcom,
  startAuthorization,
  startDexcomBackend,
  userIdOf,
} from "./support/dexcom-backend.ts";
import { type EgvRecord, egvSeries, type FakeUser } from "./support/fake-dexcom.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The contract's default DEXCOM_BACKFILL_DAYS (the backend runs without the variable). */
const BACKFILL_DAYS = 90;
/** Dexcom's longest egvs window, and the sync's. */
const WINDOW_MS = 30 * DAY;
const SYNC_SECRET = "glucose-sync-test-scheduler-secret";

let backend: DexcomBackend;
const db = () => backend.database.db;
const fake = () => backend.dexcom;

/** One call the backend made to the fake Dexcom. */
interface DexcomCall {
  endpoint: string;
  /** The egvs window as sent (Dexcom's "YYYY-MM-DDTHH:mm:ss", UTC), read as instants. */
  start: number | null;
  end: number | null;
  startDate: string | null;
  status?: number;
}
const calls: DexcomCall[] = [];
/** Makes the nth egvs call from now (1-based) answer 500; see failEgvsCall. */
let egvsFailure: { remaining: number } | null = null;
/** Appended to the records of every egvs answer while set: entries the fake itself cannot hold. */
let injectedRecords: unknown[] = [];

beforeAll(async () => {
  backend = await startDexcomBackend({ DEXCOM_SYNC_SECRET: SYNC_SECRET });
  // Every request reaches the fake through its handle(); wrapping it records what was asked.
  const original = fake().handle.bind(fake());
  fake().handle = async (request: Request) => {
    const url = new URL(request.url);
    const startDate = url.searchParams.get("startDate");
    const endDate = url.searchParams.get("endDate");
    const call: DexcomCall = {
      endpoint: url.pathname.split("/").pop()!,
      startDate,
      start: startDate === null ? null : Date.parse(`${startDate}Z`),
      end: endDate === null ? null : Date.parse(`${endDate}Z`),
    };
    calls.push(call);
    if (call.endpoint === "egvs" && egvsFailure !== null && --egvsFailure.remaining === 0) {
      egvsFailure = null;
      fake().failNext("egvs", { kind: "status", status: 500, body: "{}" });
    }
    let response = await original(request);
    call.status = response.status;
    if (call.endpoint === "egvs" && response.ok && injectedRecords.length > 0) {
      const body = await response.json() as { records: unknown[] };
      body.records.push(...injectedRecords);
      response = new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
    }
    return response;
  };
});
afterAll(async () => {
  await backend?.close();
});

/** The calls made to the fake from now on. */
function watchCalls(): () => DexcomCall[] {
  const from = calls.length;
  return () => calls.slice(from);
}

/** The nth egvs call from now (1-based) answers 500; the ones before it are answered normally. */
function failEgvsCall(n: number): void {
  egvsFailure = { remaining: n };
}

/** Dexcom's date format (UTC, no offset, whole seconds), as the sync must send it. */
const dexcomTime = (at: number) => new Date(at).toISOString().slice(0, 19);
/** Now, on the 5-minute grid, so that series of readings line up with it. */
const gridNow = () => Math.floor(Date.now() / (5 * MINUTE)) * 5 * MINUTE;
/** A record's systemTime as an instant (the fake's records are UTC without an offset). */
const timeOf = (record: EgvRecord) => Date.parse(`${record.systemTime}Z`);

/**
 * A registered caller connected through the OAuth flow to a new Dexcom account that already holds
 * `records`, once the first sync that the callback starts has finished.
 */
async function connect(uid: string, records: EgvRecord[] = []): Promise<{ token: string; user: FakeUser; userId: number }> {
  const token = await registeredCaller(backend, uid);
  const user = fake().addUser();
  user.egvs.push(...records);
  const state = await startAuthorization(backend, token);
  const answer = await callback(backend, { code: fake().authorize(user), state });
  expect(answer.status).toBe(302);
  expect(redirectParams(answer.headers.get("location")).status).toBe("connected");
  await firstSyncDone(db(), uid);
  return { token, user, userId: await userIdOf(db(), uid) };
}

function syncNow(token: string): Promise<CallResult> {
  return backend.call("dexcom-sync", { method: "POST", token });
}

function syncDue(): Promise<CallResult> {
  return backend.call("dexcom-sync", { method: "POST", path: "/due", headers: { authorization: `Bearer ${SYNC_SECRET}` } });
}

/** Moves the last sync out of the 60 s too_soon window, as two minutes passing would. */
async function ageLastSync(userId: number): Promise<void> {
  const rows = await db().query(
    "UPDATE dexcom_sync_state SET synced_at = synced_at - interval '2 minutes' WHERE user_id = $1 AND synced_at IS NOT NULL RETURNING user_id",
    [userId],
  );
  expect(rows).toHaveLength(1);
}

interface StateRow {
  synced_at: Date | null;
  last_new_readings: number | null;
  newest_reading_at: Date | null;
  failures: number;
  last_error: string | null;
  needs_reauthorization: boolean;
  /** next_due_at - now(), in seconds. */
  due_in: number;
}

async function syncState(userId: number): Promise<StateRow> {
  const [row] = await db().query<StateRow>(
    `SELECT synced_at, last_new_readings, newest_reading_at, failures, last_error, needs_reauthorization,
            extract(epoch FROM next_due_at - now())::float8 AS due_in
     FROM dexcom_sync_state WHERE user_id = $1`,
    [userId],
  );
  if (!row) throw new Error(`no sync state for user ${userId}`);
  return row;
}

/** The user's stored record ids, oldest first. */
async function storedIds(userId: number): Promise<string[]> {
  const rows = await db().query<{ record_id: string }>(
    "SELECT record_id FROM glucose_readings WHERE user_id = $1 ORDER BY system_time, record_id",
    [userId],
  );
  return rows.map((row) => row.record_id);
}

async function storedCount(userId: number): Promise<number> {
  const [row] = await db().query<{ n: number }>("SELECT count(*)::int AS n FROM glucose_readings WHERE user_id = $1", [userId]);
  return row!.n;
}

async function readings(token: string, start?: number, end?: number): Promise<CallResult> {
  const query = start === undefined ? "" : `?${new URLSearchParams({ start: new Date(start).toISOString(), end: new Date(end!).toISOString() })}`;
  return backend.call("glucose-readings", { path: query, token });
}

/** The ids of `records` in time order, as GET /glucose-readings and storedIds give them. */
function idsInOrder(records: EgvRecord[]): string[] {
  return [...records].sort((a, b) => timeOf(a) - timeOf(b) || (a.recordId < b.recordId ? -1 : 1)).map((r) => r.recordId);
}

describe("the first sync (started by the OAuth callback)", () => {
  it("backfills DEXCOM_BACKFILL_DAYS from dataRange in windows of at most 30 days, oldest first, storing every reading inside and none older", async () => {
    // 100 days of readings every 5 minutes, up to 5 minutes ago: more than the backfill reaches.
    const newest = gridNow() - 5 * MINUTE;
    const records = egvSeries(new Date(newest - 100 * DAY), 100 * 288 + 1);
    expect(timeOf(records.at(-1)!)).toBe(newest);
    const seen = watchCalls();
    const before = Date.now();

    const { token, userId } = await connect("backfill-uid", records);
    const after = Date.now();

    // The callback's code exchange and dataRange, then the sync: one dataRange, then egvs windows.
    const made = seen();
    expect(made.map((c) => c.endpoint)).toEqual(["token", "dataRange", "dataRange", "egvs", "egvs", "egvs"]);
    expect(made.every((c) => c.status === 200)).toBe(true);
    const windows = made.filter((c) => c.endpoint === "egvs");
    // The first reaches back DEXCOM_BACKFILL_DAYS from the sync's "now" (whole seconds).
    expect(windows[0]!.start!).toBeGreaterThanOrEqual(Math.floor((before - BACKFILL_DAYS * DAY) / 1000) * 1000);
    expect(windows[0]!.start!).toBeLessThanOrEqual(after - BACKFILL_DAYS * DAY);
    for (const [i, window] of windows.entries()) {
      expect(window.end! - window.start!).toBeGreaterThan(0);
      expect(window.end! - window.start!).toBeLessThanOrEqual(WINDOW_MS);
      // Oldest first, with no gap between one window and the next.
      if (i > 0) expect(window.start).toBe(windows[i - 1]!.end);
    }
    // The last reaches dataRange's end (the newest reading), and not past now.
    expect(windows.at(-1)!.end!).toBeGreaterThanOrEqual(newest);
    expect(windows.at(-1)!.end!).toBeLessThanOrEqual(after);

    // Every reading inside the backfill is stored, and none older.
    const backfillStart = windows[0]!.start!;
    const inside = records.filter((r) => timeOf(r) >= backfillStart);
    expect(inside.length).toBeGreaterThan(BACKFILL_DAYS * 288 - 2);
    expect(inside.length).toBeLessThan(records.length);
    expect(await storedIds(userId)).toEqual(idsInOrder(inside));
    const state = await syncState(userId);
    expect(state.last_new_readings).toBe(inside.length);
    expect(state.newest_reading_at!.getTime()).toBe(newest);

    // Through the API: around the backfill's start only what lies inside it; the last day whole.
    const edge = await readings(token, backfillStart - 2 * DAY, backfillStart + DAY);
    expect(edge.status).toBe(200);
    expect(edge.body.readings.map((r: { id: string }) => r.id)).toEqual(
      idsInOrder(records.filter((r) => timeOf(r) >= backfillStart && timeOf(r) < backfillStart + DAY)),
    );
    const lastDay = await readings(token, newest - DAY, newest + 1);
    expect(lastDay.body.readings).toHaveLength(289);
    expect(lastDay.body.readings.at(-1)).toMatchObject({
      id: records.at(-1)!.recordId,
      time: new Date(newest).toISOString(),
      value_mg_dl: records.at(-1)!.value,
    });
  }, 60_000);

  it("does not delay the redirect: the callback has answered while the sync still waits on Dexcom", async () => {
    const token = await registeredCaller(backend, "no-delay-uid");
    const user = fake().addUser();
    user.egvs.push(...egvSeries(new Date(gridNow() - DAY), 288));
    const state = await startAuthorization(backend, token);
    // The sync's egvs call is held for 2 s; the callback's own calls are not.
    fake().failNext("egvs", { kind: "delay", ms: 2_000 });
    const answer = await callback(backend, { code: fake().authorize(user), state });
    expect(redirectParams(answer.headers.get("location")).status).toBe("connected");
    const userId = await userIdOf(db(), "no-delay-uid");
    // Answered, and the sync has not finished (it cannot before Dexcom's held answer): nothing
    // stored, no sync recorded.
    const [running] = await db().query<{ synced: number; readings: number }>(
      `SELECT (SELECT count(*)::int FROM dexcom_sync_state s WHERE s.user_id = $1 AND s.synced_at IS NOT NULL) AS synced,
              (SELECT count(*)::int FROM glucose_readings g WHERE g.user_id = $1) AS readings`,
      [userId],
    );
    expect(running).toEqual({ synced: 0, readings: 0 });
    await firstSyncDone(db(), "no-delay-uid");
    expect((await syncState(userId)).last_new_readings).toBe(288);
  });
});

describe("later syncs", () => {
  it("fetch only the new part: no dataRange, one egvs window from an hour before the newest stored reading; new_readings counts the new ones", async () => {
    const start = gridNow() - 6 * HOUR;
    const first = egvSeries(new Date(start), 36);
    const { token, user, userId } = await connect("second-sync-uid", first);
    const newestStored = timeOf(first.at(-1)!);
    expect((await syncState(userId)).newest_reading_at!.getTime()).toBe(newestStored);
    // 30 readings arrived at Dexcom since.
    const added = egvSeries(new Date(newestStored + 5 * MINUTE), 30);
    user.egvs.push(...added);
    await ageLastSync(userId);
    const seen = watchCalls();
    const before = Date.now();

    const answer = await syncNow(token);
    const after = Date.now();

    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.sync).toEqual({
      new_readings: 30,
      newest_reading_at: new Date(timeOf(added.at(-1)!)).toISOString(),
      synced_at: expect.any(String),
    });
    const made = seen();
    expect(made.map((c) => c.endpoint)).toEqual(["egvs"]);
    expect(made[0]!.startDate).toBe(dexcomTime(newestStored - HOUR));
    expect(made[0]!.end!).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(made[0]!.end!).toBeLessThanOrEqual(Math.ceil(after / 1000) * 1000);
    expect(await storedIds(userId)).toEqual(idsInOrder([...first, ...added]));
  });

  it("a reading sent again is stored once and updated with what Dexcom sends now; new_readings 0", async () => {
    const records = egvSeries(new Date(gridNow() - 3 * HOUR), 24);
    const { token, user, userId } = await connect("resent-uid", records);
    expect(await storedCount(userId)).toBe(24);
    // Dexcom corrects the newest reading, which the next sync's overlap fetches again.
    const changed = user.egvs.at(-1)!;
    changed.value = 77;
    changed.trend = "singleDown";
    changed.status = "ok";
    await ageLastSync(userId);
    const seen = watchCalls();

    const answer = await syncNow(token);

    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.sync.new_readings).toBe(0);
    expect(seen().map((c) => c.endpoint)).toEqual(["egvs"]);
    expect(await storedIds(userId)).toEqual(idsInOrder(records));
    const got = await readings(token);
    expect(got.status).toBe(200);
    const rows = got.body.readings.filter((r: { id: string }) => r.id === changed.recordId);
    expect(rows).toEqual([expect.objectContaining({ value_mg_dl: 77, trend: "singleDown" })]);
    // The others are as first stored.
    expect(got.body.readings.at(-2)).toMatchObject({ id: records.at(-2)!.recordId, value_mg_dl: records.at(-2)!.value });
  });
});

describe("an interrupted sync", () => {
  it("Dexcom fails on the third window: 502, the first two windows kept, the failure recorded; the next sync resumes from there", async () => {
    // Connected before Dexcom had anything, so the backfill runs on POST /dexcom-sync.
    const { token, user, userId } = await connect("interrupted-uid");
    const records = egvSeries(new Date(gridNow() - 80 * DAY), 80 * 288);
    user.egvs.push(...records);
    await ageLastSync(userId);
    const seen = watchCalls();
    failEgvsCall(3);

    const failed = await syncNow(token);

    expect(failed.status, failed.text).toBe(502);
    expect(failed.body.error).toBe("dexcom_unavailable");
    const made = seen();
    expect(made.map((c) => [c.endpoint, c.status])).toEqual([["dataRange", 200], ["egvs", 200], ["egvs", 200], ["egvs", 500]]);
    const [first, second] = made.filter((c) => c.endpoint === "egvs");
    const keptRecords = records.filter((r) => timeOf(r) >= first!.start! && timeOf(r) <= second!.end!);
    expect(keptRecords.length).toBeGreaterThan(50 * 288);
    expect(keptRecords.length).toBeLessThan(records.length);
    expect(await storedIds(userId)).toEqual(idsInOrder(keptRecords));
    const afterFailure = await syncState(userId);
    expect(afterFailure.failures).toBe(1);
    expect(afterFailure.last_error).toEqual(expect.any(String));
    expect(afterFailure.newest_reading_at!.getTime()).toBe(timeOf(keptRecords.at(-1)!));

    // The next sync (the first one's synced_at is still recent: aged again).
    await ageLastSync(userId);
    const resumed = watchCalls();
    const answer = await syncNow(token);

    expect(answer.status, answer.text).toBe(200);
    const again = resumed();
    // No dataRange and nothing of the first two windows fetched again: it starts an hour before
    // the newest reading stored.
    expect(again.length).toBeGreaterThan(0);
    expect(again.every((c) => c.endpoint === "egvs" && c.status === 200)).toBe(true);
    expect(again[0]!.startDate).toBe(dexcomTime(timeOf(keptRecords.at(-1)!) - HOUR));
    expect(answer.body.sync.new_readings).toBe(records.length - keptRecords.length);
    expect(await storedIds(userId)).toEqual(idsInOrder(records));
    const state = await syncState(userId);
    expect(state.failures).toBe(0);
    expect(state.last_error).toBeNull();
  }, 60_000);
});

describe("POST /dexcom-sync while another sync is recent or running", () => {
  it("too_soon: within 60 s of the last sync, 200 with that sync's result and no Dexcom call", async () => {
    const records = egvSeries(new Date(gridNow() - 2 * HOUR), 12);
    const { token, userId } = await connect("too-soon-uid", records);
    const state = await syncState(userId);
    const seen = watchCalls();

    const answer = await syncNow(token);

    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.sync).toEqual({
      new_readings: 12,
      newest_reading_at: new Date(timeOf(records.at(-1)!)).toISOString(),
      synced_at: state.synced_at!.toISOString(),
      skipped: "too_soon",
    });
    expect(seen()).toEqual([]);
  });

  it("10 concurrent requests of one user: one sync's worth of Dexcom calls; all 10 get its result", async () => {
    const first = egvSeries(new Date(gridNow() - 4 * HOUR), 12);
    const { token, user, userId } = await connect("concurrent-sync-uid", first);
    const added = egvSeries(new Date(timeOf(first.at(-1)!) + 5 * MINUTE), 20);
    user.egvs.push(...added);
    await ageLastSync(userId);
    // Dexcom takes its time, so that the other requests arrive while the sync runs.
    fake().failNext("egvs", { kind: "delay", ms: 500 });
    const seen = watchCalls();

    const answers = await Promise.all(Array.from({ length: 10 }, () => syncNow(token)));

    // One sync's worth: the one egvs window of a later sync, nothing else.
    expect(seen().map((c) => c.endpoint)).toEqual(["egvs"]);
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    const expected = { new_readings: 20, newest_reading_at: new Date(timeOf(added.at(-1)!)).toISOString() };
    for (const answer of answers) expect(answer.body.sync).toMatchObject(expected);
    expect(new Set(answers.map((a) => a.body.sync.synced_at)).size).toBe(1);
    expect(await storedIds(userId)).toEqual(idsInOrder([...first, ...added]));
  });

  it("a sync that finishes elsewhere between a caller's look at the state and its turn: the caller gets its result, no second sync", async () => {
    const records = egvSeries(new Date(gridNow() - 2 * HOUR), 12);
    const { token, userId } = await connect("finished-meanwhile-uid", records);
    // Another process is syncing this user (its lease is live) ...
    await db().query(
      `UPDATE dexcom_sync_state SET synced_at = synced_at - interval '2 minutes',
         lease_holder = gen_random_uuid(), lease_expires_at = now() + interval '60 seconds'
       WHERE user_id = $1`,
      [userId],
    );
    const seen = watchCalls();
    let answer: Promise<CallResult> | undefined;
    await db().transaction(async (tx) => {
      // ... and is finishing: its row is locked while it records its result, so this request,
      // which has read the state, waits at its own attempt at the lease.
      await tx.query("SELECT 1 FROM dexcom_sync_state WHERE user_id = $1 FOR UPDATE", [userId]);
      answer = syncNow(token);
      await waitForLockWaiter();
      // What recordSyncSuccess writes: the result, the lease given back.
      await tx.query(
        `UPDATE dexcom_sync_state SET synced_at = now(), last_new_readings = 7, lease_holder = NULL, lease_expires_at = NULL
         WHERE user_id = $1`,
        [userId],
      );
    });

    const got = await answer!;

    // No sync of its own (no Dexcom call) ...
    expect(seen().map((c) => c.endpoint)).toEqual([]);
    // ... but the result of the one that just finished.
    expect(got.status, got.text).toBe(200);
    expect(got.body.sync.new_readings).toBe(7);
  });
});

/** Waits (bounded) until some session of this database waits for a lock on dexcom_sync_state. */
async function waitForLockWaiter(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [row] = await db().query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%dexcom_sync_state%'`,
    );
    if (row!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("no request came to wait for the sync state's row lock within 2 s");
}

describe("who can sync", () => {
  it("not connected: 409 dexcom_not_connected, no Dexcom call", async () => {
    const token = await registeredCaller(backend, "sync-not-connected-uid");
    const seen = watchCalls();
    const answer = await syncNow(token);
    expect(answer.status).toBe(409);
    expect(answer.body.error).toBe("dexcom_not_connected");
    expect(seen()).toEqual([]);
  });

  it("never registered: 404 user_not_found", async () => {
    const answer = await syncNow(await backend.token("sync-unregistered-uid"));
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBe("user_not_found");
  });

  it("inactive: 403 user_inactive, no Dexcom call", async () => {
    const { token } = await connectedCaller(backend, "sync-inactive-uid");
    await setInactive(db(), "sync-inactive-uid");
    const seen = watchCalls();
    const answer = await syncNow(token);
    expect(answer.status).toBe(403);
    expect(answer.body.error).toBe("user_inactive");
    expect(seen()).toEqual([]);
  });

  it("without the DEXCOM_* variables: 503 not_configured, for the caller and the scheduler", async () => {
    // A second server on the same database without DEXCOM_*. Built directly rather than with
    // startTestBackend: msw's interception is process-wide, and a second msw would cut this file's
    // backend off from its fake Dexcom. This one's Firebase keys come from the backend's msw.
    const plain = await buildLocalServer(
      { DATABASE_URL: backend.database.url, FIREBASE_PROJECT_ID: backend.keys.projectId, ENCRYPTION_KEY: backend.encryptionKey },
      jsonLogger(() => {}),
    );
    try {
      const token = await registeredCaller(backend, "sync-unconfigured-uid");
      const post = async (path: string, authorization: string) =>
        toResult(await plain.handler(new Request(`${BASE_URL}/dexcom-sync${path}`, { method: "POST", headers: { authorization } })));
      const answer = await post("", `Bearer ${token}`);
      expect(answer.status, answer.text).toBe(503);
      expect(answer.body.error).toBe("not_configured");
      const due = await post("/due", `Bearer ${SYNC_SECRET}`);
      expect(due.status, due.text).toBe(503);
      expect(due.body.error).toBe("not_configured");
    } finally {
      await plain.deps.db.close();
    }
  });
});

describe("failures", () => {
  it("refresh refused during a sync: 409 dexcom_reauthorization_required, marked, and the scheduler does not try the user", async () => {
    const records = egvSeries(new Date(gridNow() - 2 * HOUR), 12);
    const { token, user, userId } = await connect("sync-reauth-uid", records);
    // The stored token has expired, and its refresh token was spent elsewhere: Dexcom refuses it.
    const [refreshToken] = fake().liveRefreshTokens(user);
    const spent = await refreshAtDexcom(refreshToken!);
    expect(spent.status).toBe(200);
    await expireStoredToken(db(), "sync-reauth-uid");
    await ageLastSync(userId);

    const answer = await syncNow(token);

    expect(answer.status, answer.text).toBe(409);
    expect(answer.body.error).toBe("dexcom_reauthorization_required");
    const state = await syncState(userId);
    expect(state.needs_reauthorization).toBe(true);
    expect(await storedCount(userId)).toBe(12);

    // Even with its due time passed, the scheduler leaves the user alone.
    await db().query("UPDATE dexcom_sync_state SET next_due_at = now() - interval '1 minute' WHERE user_id = $1", [userId]);
    const seen = watchCalls();
    const due = await syncDue();
    expect(due.status, due.text).toBe(200);
    expect(due.body).toMatchObject({ users: 0, failed: 0 });
    expect(seen()).toEqual([]);
    expect((await syncState(userId)).needs_reauthorization).toBe(true);
  });

  it("transient failures back off: each failure in a row moves the next due time later; a success resets the count", async () => {
    const first = egvSeries(new Date(gridNow() - 2 * HOUR), 12);
    const { token, user, userId } = await connect("sync-backoff-uid", first);
    await ageLastSync(userId);

    fake().failNext("egvs", { kind: "status", status: 503 });
    const once = await syncNow(token);
    expect(once.status, once.text).toBe(502);
    expect(once.body.error).toBe("dexcom_unavailable");
    const afterOne = await syncState(userId);
    expect(afterOne.failures).toBe(1);
    expect(afterOne.last_error).toEqual(expect.any(String));
    expect(afterOne.due_in).toBeGreaterThan(0);

    fake().failNext("egvs", { kind: "status", status: 503 });
    const twice = await syncNow(token);
    expect(twice.status, twice.text).toBe(502);
    const afterTwo = await syncState(userId);
    expect(afterTwo.failures).toBe(2);
    expect(afterTwo.due_in).toBeGreaterThan(afterOne.due_in);

    const added = egvSeries(new Date(timeOf(first.at(-1)!) + 5 * MINUTE), 3);
    user.egvs.push(...added);
    const success = await syncNow(token);
    expect(success.status, success.text).toBe(200);
    expect(success.body.sync.new_readings).toBe(3);
    const afterSuccess = await syncState(userId);
    expect(afterSuccess.failures).toBe(0);
    expect(afterSuccess.last_error).toBeNull();
    expect(afterSuccess.due_in).toBeLessThan(afterTwo.due_in);
  });
});

describe("odd records", () => {
  it("are stored as sent, the unreadable ones skipped and counted, the rest of the batch kept; a null value with status ok is a reading but not in the summary", async () => {
    const { token, user, userId } = await connect("odd-records-uid");
    const base = gridNow() - 3 * HOUR;
    const normal = egvSeries(new Date(base), 6);
    const template = normal[0]!;
    const at = (minutes: number) => new Date(base + minutes * MINUTE).toISOString().slice(0, 19);
    const nullOk: EgvRecord = { ...template, recordId: "odd-null-ok", systemTime: at(30), value: null, status: "ok" };
    const unknownTrend: EgvRecord = {
      ...template, recordId: "odd-unknown-trend", systemTime: at(35), trend: "sidewaysUp", displayDevice: "watchOS",
      transmitterGeneration: "g8",
    };
    const noSecondsDisplay: EgvRecord = { ...template, recordId: "odd-display-minutes", systemTime: at(40), displayTime: at(40).slice(0, 16) };
    // 12:45 at +02:00 is 10:45 UTC: the instant base + 45 min, written in another zone.
    const offsetTime: EgvRecord = {
      ...template, recordId: "odd-offset", systemTime: `${new Date(base + 45 * MINUTE + 2 * HOUR).toISOString().slice(0, 19)}+02:00`,
    };
    const noSecondsSystem: EgvRecord = { ...template, recordId: "odd-system-minutes", systemTime: at(50).slice(0, 16) };
    const withoutId = { ...template, systemTime: at(55) } as Partial<EgvRecord>;
    delete withoutId.recordId;
    user.egvs.push(...normal, nullOk, unknownTrend, noSecondsDisplay, offsetTime, noSecondsSystem, withoutId as EgvRecord);
    // Entries Dexcom should never send, in the same answer: not objects, no time, an unreadable time.
    injectedRecords = [42, null, "garbage", [1, 2], { recordId: "odd-no-time", value: 100 }, { recordId: "odd-bad-time", systemTime: "yesterday" }];
    await ageLastSync(userId);

    let answer: CallResult;
    try {
      answer = await syncNow(token);
    } finally {
      injectedRecords = [];
    }

    expect(answer.status, answer.text).toBe(200);
    const kept = [...normal, nullOk, unknownTrend, noSecondsDisplay, offsetTime, noSecondsSystem];
    expect(answer.body.sync.new_readings).toBe(kept.length);
    // The unreadable ones are counted (the record without an id and the six injected entries).
    const requestId = answer.headers.get("x-request-id");
    const skippedLine = backend.logs.map((line) => JSON.parse(line)).find((l) => l.event === "dexcom_records_skipped" && l.request_id === requestId);
    expect(skippedLine?.skipped).toBe(7);

    const got = await readings(token);
    expect(got.status).toBe(200);
    const byId = new Map<string, Record<string, unknown>>(got.body.readings.map((r: { id: string }) => [r.id, r]));
    expect([...byId.keys()].sort()).toEqual(kept.map((r) => r.recordId).sort());
    expect(byId.get("odd-null-ok")).toMatchObject({ value_mg_dl: null, status: "ok" });
    expect(byId.get("odd-unknown-trend")).toMatchObject({ trend: "sidewaysUp", display_device: "watchOS", transmitter_generation: "g8" });
    expect(byId.get("odd-display-minutes")).toMatchObject({ display_time: at(40).slice(0, 16), time: new Date(base + 40 * MINUTE).toISOString() });
    expect(byId.get("odd-offset")).toMatchObject({ time: new Date(base + 45 * MINUTE).toISOString(), display_time: template.displayTime });
    expect(byId.get("odd-system-minutes")).toMatchObject({ time: new Date(base + 50 * MINUTE).toISOString() });

    const summary = await backend.call("glucose-summary", { token });
    expect(summary.status, summary.text).toBe(200);
    // Every kept reading has a value except the null one with status ok, which does not count.
    expect(summary.body.summary.readings).toBe(kept.length - 1);
  });
});

describe("disconnecting and deleting", () => {
  it("DELETE /dexcom-tokens keeps the history; DELETE /users deletes the readings and the sync state", async () => {
    const records = egvSeries(new Date(gridNow() - 6 * HOUR), 24);
    const { token, userId } = await connect("sync-delete-uid", records);
    const before = await readings(token);
    expect(before.body.readings.map((r: { id: string }) => r.id)).toEqual(idsInOrder(records));

    const disconnected = await backend.call("dexcom-tokens", { method: "DELETE", token });
    expect(disconnected.status).toBe(200);
    expect(disconnected.body.revoked).toBe(1);
    const after = await readings(token);
    expect(after.status).toBe(200);
    expect(after.body.readings).toEqual(before.body.readings);
    expect(after.body.newest_reading_at).toBe(new Date(timeOf(records.at(-1)!)).toISOString());
    // Nothing to sync with any more.
    const sync = await syncNow(token);
    expect(sync.status).toBe(409);
    expect(sync.body.error).toBe("dexcom_not_connected");

    const deleted = await backend.call("users", { method: "DELETE", token });
    expect(deleted.status).toBe(204);
    expect(await storedCount(userId)).toBe(0);
    expect(await db().query("SELECT user_id FROM dexcom_sync_state WHERE user_id = $1", [userId])).toEqual([]);
  });
});
