// GET /glucose-readings over real HTTP handling and a real Postgres: readings stored with
// storeReadings (as the sync stores them) and read back as the contract's "glucose history"
// section says: the window (start included, end excluded, 24 h by default, at most 90 days), the
// order, mg/dL from mmol/L, odd values as sent, one row per recordId, one user's readings only, and
// nothing left after DELETE /users.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readingRows, storeReadings } from "../shared/glucose/records.ts";
import { BASE_URL, type CallResult, startTestBackend, type TestBackend, toResult } from "./support/backend.ts";
import { ERROR_KEYS, ISO_UTC, registeredCaller, setInactive } from "./support/contract-helpers.ts";
import { G7_IOS_READING } from "./support/fake-dexcom.ts";

const READING_KEYS = [
  "display_device", "display_time", "id", "status", "time", "transmitter_generation", "trend", "trend_rate", "unit",
  "value_mg_dl",
];
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Fixed readings live around here, far from "now", so the default window never sees them. */
const T0 = Date.parse("2026-03-01T12:00:00Z");

let backend: TestBackend;

beforeAll(async () => {
  backend = await startTestBackend();
});

afterAll(async () => {
  await backend?.close();
});

async function getReadings(token: string, query: { start?: string | number; end?: string | number } = {}): Promise<CallResult> {
  const params = new URLSearchParams(
    Object.entries(query).map(([key, value]) => [key, typeof value === "number" ? new Date(value).toISOString() : String(value)]),
  );
  const url = `${BASE_URL}/glucose-readings${params.size > 0 ? `?${params}` : ""}`;
  return toResult(await backend.handler(new Request(url, { headers: { authorization: `Bearer ${token}` } })));
}

/** A registered caller's token and user id. */
async function caller(uid: string): Promise<{ token: string; userId: number }> {
  const token = await registeredCaller(backend, uid);
  const [row] = await backend.database.db.query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [uid]);
  return { token, userId: row!.id };
}

/** A Dexcom egvs record at this instant (systemTime as Dexcom writes it: UTC, no offset), with overrides. */
function egv(at: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    recordId: randomUUID(),
    systemTime: new Date(at).toISOString().slice(0, 19),
    displayTime: new Date(at + HOUR).toISOString().slice(0, 19) + "+01:00",
    transmitterId: "8GK3X1",
    transmitterTicks: 1000,
    value: 120,
    status: "ok",
    ...G7_IOS_READING,
    ...overrides,
  };
}

/** Stores Dexcom records for a user as the sync does: readingRows, then storeReadings. */
async function store(userId: number, records: unknown[]) {
  const { rows, skipped } = readingRows(records);
  expect(skipped).toBe(0);
  return storeReadings(backend.database.db, userId, rows);
}

const idsOf = (result: CallResult): string[] => result.body.readings.map((reading: { id: string }) => reading.id);

describe("GET /glucose-readings", () => {
  it("answers a caller never connected with no readings and null sync times", async () => {
    const { token } = await caller("never-connected");
    const result = await getReadings(token);
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ readings: [], synced_at: null, newest_reading_at: null });
    expect(result.headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("answers every reading with the contract's fields, values as sent, times in UTC", async () => {
    const { token, userId } = await caller("fields");
    const records = [
      egv(T0, {
        recordId: "rec-odd",
        systemTime: "2026-03-01T13:00+01:00", // no seconds, an offset
        displayTime: "2026-03-01T13:00",
        value: null,
        status: "weird",
        trend: "sidewaysUp",
        trendRate: -1.25,
        displayDevice: "watch",
        transmitterGeneration: "g715day",
      }),
      egv(T0 + 5 * MINUTE, { recordId: "rec-plain" }),
    ];
    await store(userId, records);
    const result = await getReadings(token, { start: T0, end: T0 + HOUR });
    expect(result.status).toBe(200);
    expect(Object.keys(result.body).sort()).toEqual(["newest_reading_at", "readings", "synced_at"]);
    for (const reading of result.body.readings) expect(Object.keys(reading).sort()).toEqual(READING_KEYS);
    expect(result.body.readings).toEqual([
      {
        id: "rec-odd",
        time: "2026-03-01T12:00:00.000Z",
        display_time: "2026-03-01T13:00",
        value_mg_dl: null,
        status: "weird",
        trend: "sidewaysUp",
        trend_rate: -1.25,
        unit: "mg/dL",
        display_device: "watch",
        transmitter_generation: "g715day",
      },
      {
        id: "rec-plain",
        time: "2026-03-01T12:05:00.000Z",
        display_time: "2026-03-01T13:05:00+01:00",
        value_mg_dl: 120,
        status: "ok",
        trend: "flat",
        trend_rate: 0.1,
        unit: "mg/dL",
        display_device: "iOS",
        transmitter_generation: "g7",
      },
    ]);
    expect(result.body.newest_reading_at).toBe("2026-03-01T12:05:00.000Z");
    // Stored but never synced by the sync itself (these rows came straight from storeReadings).
    expect(result.body.synced_at).toBeNull();
  });

  it("answers synced_at from the sync state, in UTC with milliseconds", async () => {
    const { token, userId } = await caller("synced-at");
    await store(userId, [egv(T0)]);
    await backend.database.db.query(
      "UPDATE dexcom_sync_state SET synced_at = '2026-03-02T08:30:15.123+02:00' WHERE user_id = $1",
      [userId],
    );
    const result = await getReadings(token, { start: T0, end: T0 + HOUR });
    expect(result.status).toBe(200);
    expect(result.body.synced_at).toBe("2026-03-02T06:30:15.123Z");
    expect(result.body.synced_at).toMatch(ISO_UTC);
    expect(result.body.readings).toHaveLength(1);
  });

  it("answers oldest first, readings of one instant by their id", async () => {
    const { token, userId } = await caller("order");
    const records = [
      egv(T0 + 10 * MINUTE, { recordId: "c" }),
      egv(T0, { recordId: "z" }),
      egv(T0 + 5 * MINUTE, { recordId: "b" }),
      egv(T0 + 5 * MINUTE, { recordId: "a" }),
      egv(T0 - 5 * MINUTE, { recordId: "y" }),
    ];
    await store(userId, records);
    const result = await getReadings(token, { start: T0 - HOUR, end: T0 + HOUR });
    expect(result.status).toBe(200);
    expect(idsOf(result)).toEqual(["y", "z", "a", "b", "c"]);
  });

  it("includes the window's start and excludes its end", async () => {
    const { token, userId } = await caller("bounds");
    await store(userId, [
      egv(T0 - 1000, { recordId: "before" }),
      egv(T0, { recordId: "at-start" }),
      egv(T0 + 5 * MINUTE, { recordId: "inside" }),
      egv(T0 + 10 * MINUTE - 1000, { recordId: "last-second" }),
      egv(T0 + 10 * MINUTE, { recordId: "at-end" }),
    ]);
    const result = await getReadings(token, { start: T0, end: T0 + 10 * MINUTE });
    expect(result.status).toBe(200);
    expect(idsOf(result)).toEqual(["at-start", "inside", "last-second"]);
    // Dates with an offset, or none (UTC), name the same instants.
    const offsets = await getReadings(token, { start: "2026-03-01T13:00:00+01:00", end: "2026-03-01T12:10:00" });
    expect(idsOf(offsets)).toEqual(["at-start", "inside", "last-second"]);
    // An empty window is a window.
    const empty = await getReadings(token, { start: T0, end: T0 });
    expect(empty.status).toBe(200);
    expect(empty.body.readings).toEqual([]);
    expect(empty.body.newest_reading_at).toBe("2026-03-01T12:10:00.000Z");
  });

  it("defaults to the last 24 hours", async () => {
    const { token, userId } = await caller("default-window");
    const now = Date.now();
    await store(userId, [
      egv(now - 25 * HOUR, { recordId: "too-old" }),
      egv(now - 23 * HOUR, { recordId: "yesterday" }),
      egv(now - 5 * MINUTE, { recordId: "recent" }),
      egv(now + HOUR, { recordId: "future" }),
    ]);
    const result = await getReadings(token);
    expect(result.status).toBe(200);
    expect(idsOf(result)).toEqual(["yesterday", "recent"]);
    // Only a start: the 24 h from it (to 2 h ago).
    const fromStart = await getReadings(token, { start: now - 26 * HOUR });
    expect(idsOf(fromStart)).toEqual(["too-old", "yesterday"]);
  });

  it("allows 90 days and no more; a start after the end, or a date that is not one, is 400", async () => {
    const { token, userId } = await caller("limits");
    await store(userId, [egv(T0, { recordId: "first" }), egv(T0 + 90 * DAY - 1000, { recordId: "last" })]);
    const ninety = await getReadings(token, { start: T0, end: T0 + 90 * DAY });
    expect(ninety.status).toBe(200);
    expect(idsOf(ninety)).toEqual(["first", "last"]);

    for (const query of [
      { start: T0, end: T0 + 90 * DAY + 1 },
      { start: T0 + 1, end: T0 },
      { start: "yesterday" },
      { end: "2026-02-30T00:00:00Z" },
    ]) {
      const result = await getReadings(token, query);
      expect(result.status, JSON.stringify(query)).toBe(400);
      expect(result.body.error).toBe("validation_failed");
      expect(Object.keys(result.body).sort()).toEqual([...ERROR_KEYS, "details"].sort());
    }
  });

  it("refuses start or end given more than once, naming each (the first would otherwise win silently)", async () => {
    const { token, userId } = await caller("repeated");
    await store(userId, [egv(T0, { recordId: "in-first-window" })]);
    const first = `start=${new Date(T0).toISOString()}&end=${new Date(T0 + HOUR).toISOString()}`;
    const cases: [string, string[]][] = [
      [`${first}&start=${new Date(T0 + 1).toISOString()}`, ["start"]],
      [`${first}&end=${new Date(T0 + 2 * HOUR).toISOString()}`, ["end"]],
      [`${first}&start=x&%65nd=y`, ["start", "end"]],
    ];
    for (const [query, paths] of cases) {
      const url = `${BASE_URL}/glucose-readings?${query}`;
      const result = await toResult(await backend.handler(new Request(url, { headers: { authorization: `Bearer ${token}` } })));
      expect(result.status, query).toBe(400);
      expect(result.body.error).toBe("validation_failed");
      expect(result.body.details).toEqual(paths.map((path) => ({ path, message: "is given more than once" })));
    }
    // Other parameters are not the endpoint's concern, repeated or not.
    const url = `${BASE_URL}/glucose-readings?${first}&v=1&v=2`;
    const ignored = await toResult(await backend.handler(new Request(url, { headers: { authorization: `Bearer ${token}` } })));
    expect(ignored.status).toBe(200);
    expect(idsOf(ignored)).toEqual(["in-first-window"]);
  });

  it("answers a window at the calendar's edges instead of failing", async () => {
    const { token } = await caller("edges");
    for (const query of [{ start: "9999-12-31T12:00:00Z" }, { end: "0001-01-01T00:00:00Z" }]) {
      const result = await getReadings(token, query);
      expect(result.status, JSON.stringify(query)).toBe(200);
      expect(result.body.readings).toEqual([]);
    }
  });

  it("converts mmol/L to mg/dL (x 18.0182, rounded) and keeps the unit as sent", async () => {
    const { token, userId } = await caller("mmol");
    await store(userId, [
      egv(T0, { recordId: "m1", value: 5.5, unit: "mmol/L" }), // 99.1001
      egv(T0 + 5 * MINUTE, { recordId: "m2", value: 2.2, unit: "mmol/L" }), // 39.64004
      egv(T0 + 10 * MINUTE, { recordId: "m3", value: 22.2, unit: "mmol/L" }), // 400.00404
      egv(T0 + 15 * MINUTE, { recordId: "mg", value: 99, unit: "mg/dL" }),
      egv(T0 + 20 * MINUTE, { recordId: "no-value", value: null, unit: "mmol/L", status: "low" }),
    ]);
    const result = await getReadings(token, { start: T0, end: T0 + HOUR });
    expect(result.status).toBe(200);
    expect(result.body.readings.map((r: Record<string, unknown>) => [r.id, r.value_mg_dl, r.unit, r.status])).toEqual([
      ["m1", 99, "mmol/L", "ok"],
      ["m2", 40, "mmol/L", "ok"],
      ["m3", 400, "mmol/L", "ok"],
      ["mg", 99, "mg/dL", "ok"],
      ["no-value", null, "mmol/L", "low"],
    ]);
  });

  it("stores a record sent twice once, updated, and counts it as new only the first time", async () => {
    const { token, userId } = await caller("twice");
    const first = egv(T0, { recordId: "again", value: 100, status: "ok", trend: "flat" });
    const other = egv(T0 + 5 * MINUTE, { recordId: "other" });
    expect(await store(userId, [first, other])).toEqual({
      newReadings: 2,
      newestReadingAt: new Date(T0 + 5 * MINUTE),
    });
    const resent = { ...first, value: 140, status: "high", trend: "doubleUp" };
    expect(await store(userId, [resent])).toEqual({ newReadings: 0, newestReadingAt: new Date(T0 + 5 * MINUTE) });
    // And within one batch, the last copy wins.
    expect((await store(userId, [{ ...resent, value: 150 }, { ...resent, value: 160 }])).newReadings).toBe(0);

    const [count] = await backend.database.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM glucose_readings WHERE user_id = $1 AND record_id = 'again'",
      [userId],
    );
    expect(count!.n).toBe(1);
    const result = await getReadings(token, { start: T0, end: T0 + HOUR });
    expect(result.body.readings.map((r: Record<string, unknown>) => [r.id, r.value_mg_dl, r.status, r.trend])).toEqual([
      ["again", 160, "high", "doubleUp"],
      ["other", 120, "ok", "flat"],
    ]);
  });

  it("stores an odd batch whole: nothing in it makes Postgres refuse the statement", async () => {
    const { token, userId } = await caller("odd-batch");
    const { rows, skipped } = readingRows([
      egv(T0, { recordId: "nul", status: "o\u0000k", displayTime: "\u0000" }),
      egv(T0 + 1 * MINUTE, { recordId: "surrogate", trend: "\ud800", transmitterId: "\udfff" }),
      egv(T0 + 2 * MINUTE, { recordId: "numbers", trendRate: 1e300, value: 5e-324, transmitterTicks: -(2 ** 53 - 1) }),
      egv(T0 + 3 * MINUTE, { recordId: "offset-seconds", systemTime: "2026-03-01T13:03:30+01:00:30" }),
      egv(T0 + 4 * MINUTE, { recordId: "emoji 📈", displayDevice: "iOS 📱" }),
      42,
      { recordId: "no-time" },
    ]);
    expect(skipped).toBe(2);
    expect((await storeReadings(backend.database.db, userId, rows)).newReadings).toBe(5);
    const result = await getReadings(token, { start: T0, end: T0 + HOUR });
    expect(result.status).toBe(200);
    expect(result.body.readings.map((r: Record<string, unknown>) => [r.id, r.time, r.status, r.trend, r.display_device])).toEqual([
      ["nul", "2026-03-01T12:00:00.000Z", null, "flat", "iOS"],
      ["surrogate", "2026-03-01T12:01:00.000Z", "ok", null, "iOS"],
      ["numbers", "2026-03-01T12:02:00.000Z", "ok", "flat", "iOS"],
      ["offset-seconds", "2026-03-01T12:03:00.000Z", "ok", "flat", "iOS"],
      ["emoji 📈", "2026-03-01T12:04:00.000Z", "ok", "flat", "iOS 📱"],
    ]);
    expect(result.body.readings[2].trend_rate).toBe(1e300);
    expect(result.body.readings[2].value_mg_dl).toBe(0);
  });

  it("never shows another user's readings", async () => {
    const mine = await caller("mine");
    const theirs = await caller("theirs");
    await store(mine.userId, [egv(T0, { recordId: "shared-id" }), egv(T0 + 5 * MINUTE, { recordId: "only-mine" })]);
    // The same recordId for another user is another reading.
    await store(theirs.userId, [egv(T0, { recordId: "shared-id", value: 250 }), egv(T0 + 10 * MINUTE, { recordId: "only-theirs" })]);
    const result = await getReadings(mine.token, { start: T0, end: T0 + HOUR });
    expect(result.body.readings.map((r: Record<string, unknown>) => [r.id, r.value_mg_dl])).toEqual([
      ["shared-id", 120],
      ["only-mine", 120],
    ]);
    expect(result.body.newest_reading_at).toBe("2026-03-01T12:05:00.000Z");
    const other = await getReadings(theirs.token, { start: T0, end: T0 + HOUR });
    expect(idsOf(other)).toEqual(["shared-id", "only-theirs"]);
  });

  it("is 404 for an unknown caller and 403 for an inactive one", async () => {
    const unknown = await getReadings(await backend.token("not-registered"));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe("user_not_found");

    const { token, userId } = await caller("inactive");
    await store(userId, [egv(T0)]);
    await setInactive(backend.database.db, "inactive");
    const inactive = await getReadings(token, { start: T0, end: T0 + HOUR });
    expect(inactive.status).toBe(403);
    expect(inactive.body.error).toBe("user_inactive");
    expect(inactive.text).not.toContain("readings");
  });

  it("loses the readings and the sync state with the user (DELETE /users)", async () => {
    const { token, userId } = await caller("deleted");
    const bystander = await caller("bystander");
    await store(userId, [egv(T0), egv(T0 + 5 * MINUTE)]);
    await store(bystander.userId, [egv(T0)]);
    const count = async (table: string, id: number) =>
      (await backend.database.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE user_id = $1`, [id]))[0]!.n;
    expect(await count("glucose_readings", userId)).toBe(2);
    expect(await count("dexcom_sync_state", userId)).toBe(1);

    expect((await backend.call("users", { method: "DELETE", token })).status).toBe(204);
    expect(await count("glucose_readings", userId)).toBe(0);
    expect(await count("dexcom_sync_state", userId)).toBe(0);
    expect((await getReadings(token, { start: T0, end: T0 + HOUR })).status).toBe(404);
    // Only theirs.
    expect(await count("glucose_readings", bystander.userId)).toBe(1);
    expect(await count("dexcom_sync_state", bystander.userId)).toBe(1);
  });
});
