// GET /glucose-summary against an independent oracle: test/fixtures/glucose-summary/*.json, written
// by make_fixtures.py (Python's statistics and zoneinfo), hold readings, a query and the summary it
// must give. Each fixture's readings go straight into glucose_readings for a user of their own, on
// a real Postgres, and the endpoint's answer is compared figure by figure.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFirebaseVerifier } from "../shared/auth/firebase-verifier.ts";
import type { Database } from "../shared/db/database.ts";
import { GLUCOSE_SUMMARY_SQL } from "../shared/glucose/summary.ts";
import { glucoseSummaryFunction } from "../shared/glucose/summary-function.ts";
import { jsonLogger } from "../shared/http/log.ts";
import { BASE_URL, type CallResult, startTestBackend, type TestBackend, toResult } from "./support/backend.ts";
import { registeredCaller, setInactive } from "./support/contract-helpers.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";

const execFileAsync = promisify(execFile);
const TIME_ZONE_MODULE = join(REPO_ROOT, "shared/glucose/time-zone.ts");

const FIXTURES = join(import.meta.dirname, "fixtures", "glucose-summary");
const DAY_MS = 24 * 60 * 60 * 1000;

type Row = [string, string, number | null, string | null, string | null];

interface Fixture {
  name: string;
  about: string;
  query: { start: string; end: string; tz: string };
  reading_columns: string[];
  readings: Row[];
  expected: Record<string, unknown>;
}

const fixtures: Fixture[] = readdirSync(FIXTURES)
  .filter((file) => file.endsWith(".json"))
  .sort()
  .map((file) => JSON.parse(readFileSync(join(FIXTURES, file), "utf8")) as Fixture);

const fixture = (name: string) => fixtures.find((f) => f.name === name)!;

// Figures that are counts are compared exactly; every other number to 9 decimal places.
const COUNTS = new Set(["readings", "expected_readings", "days_with_data", "hour"]);

const SUMMARY_KEYS = [
  "agp", "cgm_active_percent", "cv_percent", "days_with_data", "end", "expected_readings", "gmi_percent",
  "mean_mg_dl", "ranges", "readings", "sd_mg_dl", "start", "sufficient",
];

let backend: TestBackend;
let db: Database;
let neighbourId: number;

beforeAll(async () => {
  backend = await startTestBackend();
  db = backend.database.db;
  // A neighbour with readings (all 399 mg/dL) wherever any fixture has some: a summary that let
  // another user's readings in would miss its fixture's figures.
  await registeredCaller(backend, "gs-neighbour");
  neighbourId = await userId("gs-neighbour");
  for (const f of fixtures) {
    await insertReadings(neighbourId, f.readings.map(([id, time]): Row => [`n-${f.name}-${id}`, time, 399, "mg/dL", "ok"]));
  }
}, 60_000);

afterAll(async () => {
  await backend?.close();
});

/** The function built on a database of the test's choosing (the backend's msw serves the test keys at Google's JWKS URL). */
function ownFunction(database: Database, logs: string[]) {
  return glucoseSummaryFunction({
    db: database,
    verifier: createFirebaseVerifier({ projectId: backend.keys.projectId }),
    logger: jsonLogger((line) => logs.push(line)),
    allowedOrigins: ["*"],
  });
}

/** GET /glucose-summary through the server's gateway, or straight to `handler` when given. */
async function getSummary(
  token: string | undefined,
  query: Record<string, string> = {},
  handler?: (request: Request) => Promise<Response>,
): Promise<CallResult> {
  const search = new URLSearchParams(query).toString();
  const path = search === "" ? "" : `?${search}`;
  if (handler === undefined) return backend.call("glucose-summary", { token, path });
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  return toResult(await handler(new Request(`${BASE_URL}/glucose-summary${path}`, { headers })));
}

async function userId(uid: string): Promise<number> {
  const [row] = await db.query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [uid]);
  return row!.id;
}

/** Straight into the table, as a sync would store them (value_mg_dl is generated from value and unit). */
async function insertReadings(user: number, rows: Row[]): Promise<void> {
  const records = rows.map(([record_id, system_time, value, unit, status]) => ({ record_id, system_time, value, unit, status }));
  await db.query(
    `INSERT INTO glucose_readings (user_id, record_id, system_time, value, unit, status)
     SELECT $1, r.record_id, r.system_time, r.value, r.unit, r.status
     FROM jsonb_to_recordset($2::text::jsonb)
       AS r(record_id text, system_time timestamptz, value numeric, unit text, status text)`,
    [user, JSON.stringify(records)],
  );
}

async function callerWithReadings(uid: string, rows: Row[]): Promise<string> {
  const token = await registeredCaller(backend, uid);
  await insertReadings(await userId(uid), rows);
  return token;
}

/** Every key and value of the oracle's summary, and no other key. */
function expectSameSummary(actual: unknown, expected: unknown, path = "summary"): void {
  if (expected === null) {
    expect(actual, path).toBeNull();
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual), `${path} is an array`).toBe(true);
    expect((actual as unknown[]).length, `${path}.length`).toBe(expected.length);
    expected.forEach((item, i) => expectSameSummary((actual as unknown[])[i], item, `${path}[${i}]`));
  } else if (typeof expected === "object") {
    expect(actual, path).toBeTypeOf("object");
    expect(actual, path).not.toBeNull();
    expect(Object.keys(actual as object).sort(), `${path} keys`).toEqual(Object.keys(expected).sort());
    for (const [key, value] of Object.entries(expected)) {
      expectSameSummary((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    }
  } else if (typeof expected === "number") {
    expect(actual, path).toBeTypeOf("number");
    const key = path.slice(path.lastIndexOf(".") + 1);
    if (COUNTS.has(key)) expect(actual, path).toBe(expected);
    else expect(actual, path).toBeCloseTo(expected, 9);
  } else {
    expect(actual, path).toBe(expected);
  }
}

describe("GET /glucose-summary against the Python oracle", () => {
  it("has every data set the issue asks for", () => {
    expect(fixtures.map((f) => f.name).sort()).toEqual([
      "boundaries", "empty", "insufficient-new-york", "no-whole-slot", "over-full", "single",
      "spring-forward-new-york", "sufficient-berlin",
    ]);
    for (const f of fixtures) {
      expect(f.reading_columns).toEqual(["record_id", "system_time", "value", "unit", "status"]);
      expect(Object.keys(f.expected).sort()).toEqual(SUMMARY_KEYS);
    }
  });

  it.each(fixtures.map((f) => [f.name, f] as const))("%s: every figure as the oracle computed it", async (name, f) => {
    const token = await callerWithReadings(`gs-fixture-${name}`, f.readings);
    const response = await getSummary(token, f.query);
    expect(response.status, response.text).toBe(200);
    expect(Object.keys(response.body)).toEqual(["summary"]);
    expectSameSummary(response.body.summary, f.expected);
  });
});

describe("GET /glucose-summary", () => {
  it("answers the empty summary to a user who never connected", async () => {
    // The neighbour has readings in this window; this user has none and no sync state.
    const token = await registeredCaller(backend, "gs-never-connected");
    const { query } = fixture("boundaries");
    const response = await getSummary(token, query);
    expect(response.status, response.text).toBe(200);
    const summary = response.body.summary;
    expect(summary).toMatchObject({
      start: "2026-06-01T00:00:00.000Z",
      end: "2026-06-02T00:04:59.999Z",
      readings: 0,
      expected_readings: 288,
      cgm_active_percent: 0,
      days_with_data: 0,
      mean_mg_dl: null,
      sd_mg_dl: null,
      cv_percent: null,
      gmi_percent: null,
      ranges: null,
      sufficient: false,
    });
    expect(summary.agp).toEqual(
      Array.from({ length: 24 }, (_, hour) => ({ hour, p5: null, p25: null, p50: null, p75: null, p95: null })),
    );
  });

  it("counts a reading exactly at the start and none exactly at the end", async () => {
    const token = await callerWithReadings("gs-edges", [
      ["edge-before", "2026-02-02T09:59:59.999Z", 300, "mg/dL", "ok"],
      ["edge-start", "2026-02-02T10:00:00.000Z", 100, "mg/dL", "ok"],
      ["edge-last", "2026-02-02T10:59:59.999Z", 120, "mg/dL", "ok"],
      ["edge-end", "2026-02-02T11:00:00.000Z", 300, "mg/dL", "ok"],
    ]);
    const response = await getSummary(token, { start: "2026-02-02T10:00:00Z", end: "2026-02-02T11:00:00Z" });
    expect(response.status, response.text).toBe(200);
    expect(response.body.summary.readings).toBe(2);
    expect(response.body.summary.mean_mg_dl).toBe(110);
    expect(response.body.summary.expected_readings).toBe(12);
  });

  it("is sufficient from a window of exactly 14 days, not one a millisecond shorter", async () => {
    // 2823 readings, one every 5 minutes: 70.01 % of the 4032 slots of 14 days.
    const token = await registeredCaller(backend, "gs-fourteen-days");
    await db.query(
      `INSERT INTO glucose_readings (user_id, record_id, system_time, value, unit, status)
       SELECT $1, 'd-' || i, timestamptz '2026-08-01T00:00:00Z' + i * interval '5 minutes', 120, 'mg/dL', 'ok'
       FROM generate_series(0, 2822) AS i`,
      [await userId("gs-fourteen-days")],
    );
    const full = await getSummary(token, { start: "2026-08-01T00:00:00Z", end: "2026-08-15T00:00:00Z" });
    expect(full.status, full.text).toBe(200);
    expect(full.body.summary).toMatchObject({ readings: 2823, expected_readings: 4032, sufficient: true });

    const short = await getSummary(token, { start: "2026-08-01T00:00:00Z", end: "2026-08-14T23:59:59.999Z" });
    expect(short.status, short.text).toBe(200);
    expect(short.body.summary).toMatchObject({ readings: 2823, expected_readings: 4031, sufficient: false });
    expect(short.body.summary.cgm_active_percent).toBeGreaterThan(70);
  });

  it("defaults to the 14 days ending now", async () => {
    const now = Date.now();
    const token = await callerWithReadings("gs-default-window", [
      ["recent", new Date(now - 13 * DAY_MS).toISOString(), 150, "mg/dL", "ok"],
      ["too-old", new Date(now - 15 * DAY_MS).toISOString(), 150, "mg/dL", "ok"],
      ["future", new Date(now + 60 * 60 * 1000).toISOString(), 150, "mg/dL", "ok"],
    ]);
    const before = Date.now();
    const response = await getSummary(token);
    const after = Date.now();
    expect(response.status, response.text).toBe(200);
    const { start, end, readings, expected_readings, agp } = response.body.summary;
    expect(Date.parse(end)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(end)).toBeLessThanOrEqual(after);
    expect(Date.parse(end) - Date.parse(start)).toBe(14 * DAY_MS);
    expect(expected_readings).toBe(4032);
    expect(readings).toBe(1);
    // Default zone UTC: the reading's UTC hour holds it.
    const hour = new Date(now - 13 * DAY_MS).getUTCHours();
    expect(agp[hour].p50).toBe(150);
  });

  it("accepts a window of 90 days and refuses one a millisecond longer", async () => {
    const token = await registeredCaller(backend, "gs-long-window");
    const ok = await getSummary(token, { start: "2026-01-01T00:00:00Z", end: "2026-04-01T00:00:00Z" });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.summary.expected_readings).toBe(90 * 288);

    const tooLong = await getSummary(token, { start: "2026-01-01T00:00:00Z", end: "2026-04-01T00:00:00.001Z" });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toBe("validation_failed");
    expect(tooLong.body.details).toEqual([expect.objectContaining({ path: "end" })]);
  });

  it("refuses a start after the end; a start equal to the end is an empty window", async () => {
    const token = await callerWithReadings("gs-start-end", [["at", "2026-02-03T00:00:00Z", 100, "mg/dL", "ok"]]);
    const backwards = await getSummary(token, { start: "2026-02-03T00:00:00.001Z", end: "2026-02-03T00:00:00Z" });
    expect(backwards.status).toBe(400);
    expect(backwards.body.error).toBe("validation_failed");
    expect(backwards.body.details).toEqual([expect.objectContaining({ path: "start" })]);

    const empty = await getSummary(token, { start: "2026-02-03T00:00:00Z", end: "2026-02-03T00:00:00Z" });
    expect(empty.status, empty.text).toBe(200);
    expect(empty.body.summary).toMatchObject({ readings: 0, expected_readings: 0, cgm_active_percent: 0, ranges: null });
  });

  it("refuses start and end that are not ISO 8601", async () => {
    const token = await registeredCaller(backend, "gs-bad-dates");
    const response = await getSummary(token, { start: "yesterday", end: "2026-02-30T00:00:00Z" });
    expect(response.status).toBe(400);
    expect(response.body.error).toBe("validation_failed");
    expect(response.body.details.map((d: { path: string }) => d.path).sort()).toEqual(["end", "start"]);
  });

  // Only IANA identifiers (UTC, Area/Location): offsets and POSIX rules, which Postgres reads with
  // the POSIX sign ("+05:00" as UTC-5) and Deno's ICU takes as offsets; abbreviations and legacy
  // links, which Postgres reads as fixed offsets where ICU reads a place ("CET", "PST").
  it.each([
    "Mars/Olympus", "UTC+5", "+05:00", "-03", "+0530", "<+05>-5", "EST5EDT", "EST", "CET", "CEST", "PST",
    "US/Eastern", "SystemV/EST5", "Etc/Unknown", "Europe/", "Europe//Berlin", "Europe/Berlin/", "", " UTC",
    "Europe/Berlin ", "x".repeat(100),
  ])(
    "refuses the zone %j with 400 validation_failed on tz",
    async (tz) => {
      const token = await registeredCaller(backend, `gs-bad-tz-${Buffer.from(tz).toString("hex").slice(0, 40)}`);
      const response = await getSummary(token, { start: "2026-02-01T00:00:00Z", end: "2026-02-02T00:00:00Z", tz });
      expect(response.status, response.text).toBe(400);
      expect(response.body.error).toBe("validation_failed");
      expect(response.body.details).toEqual([expect.objectContaining({ path: "tz" })]);
    },
  );

  it("reads IANA zone names in any case, with three parts, and Etc zones with IANA's sign", async () => {
    const f = fixture("spring-forward-new-york");
    const token = await callerWithReadings("gs-zone-names", f.readings);
    for (const tz of ["America/New_York", "america/new_york"]) {
      const response = await getSummary(token, { ...f.query, tz });
      expect(response.status, `${tz}: ${response.text}`).toBe(200);
      expectSameSummary(response.body.summary, f.expected, `summary(${tz})`);
    }

    // One reading at 12:30 UTC on 1 July: the hour of the day it falls in, zone by zone.
    const summer = await callerWithReadings("gs-zone-hours", [["h", "2026-07-01T12:30:00Z", 111, "mg/dL", "ok"]]);
    const hours: [string, number][] = [
      ["UTC", 12], ["utc", 12], ["Etc/UTC", 12], ["GMT", 12],
      ["Etc/GMT+5", 7], // IANA's Etc names have the POSIX sign: GMT+5 is five hours behind
      ["America/Argentina/Buenos_Aires", 9], ["Europe/Berlin", 14], ["Asia/Kolkata", 18], ["Europe/Kyiv", 15],
    ];
    for (const [tz, hour] of hours) {
      const response = await getSummary(summer, { start: "2026-07-01T00:00:00Z", end: "2026-07-02T00:00:00Z", tz });
      expect(response.status, `${tz}: ${response.text}`).toBe(200);
      const withReading = response.body.summary.agp.filter((h: { p50: number | null }) => h.p50 !== null);
      expect(withReading, tz).toEqual([expect.objectContaining({ hour, p50: 111 })]);
    }
  });

  // The functions run on Deno, whose ICU takes offsets ("+05:00", "-03") for zones where Node's
  // does not: the rule must hold there too.
  it("applies the same rule on Deno, the edge runtime", async () => {
    const names = ["+05:00", "-03", "+0530", "EST5EDT", "EST", "CET", "US/Eastern", "UTC", "Etc/GMT+5", "europe/berlin"];
    const code = `import { ianaTimeZone } from ${JSON.stringify(pathToFileURL(TIME_ZONE_MODULE).href)};
console.log(JSON.stringify(${JSON.stringify(names)}.map(ianaTimeZone)));`;
    const { stdout } = await execFileAsync(join(REPO_ROOT, "node_modules/.bin/deno"), ["eval", "--quiet", code], { cwd: REPO_ROOT });
    expect(JSON.parse(stdout)).toEqual([null, null, null, null, null, null, null, "UTC", "Etc/GMT+5", "Europe/Berlin"]);
  });

  it("refuses a parameter given more than once, naming each", async () => {
    const token = await registeredCaller(backend, "gs-repeated");
    const cases: [string, string[]][] = [
      ["?start=2026-02-01T00:00:00Z&start=2026-02-01T00:00:00Z", ["start"]],
      ["?end=2026-02-02T00:00:00Z&start=2026-02-01T00:00:00Z&end=2026-02-03T00:00:00Z", ["end"]],
      ["?tz=UTC&tz=Europe/Berlin", ["tz"]],
      ["?tz=UTC&t%7A=UTC&start=2026-02-01T00:00:00Z&start=x", ["start", "tz"]],
    ];
    for (const [path, names] of cases) {
      const response = await backend.call("glucose-summary", { token, path });
      expect(response.status, `${path}: ${response.text}`).toBe(400);
      expect(response.body.error).toBe("validation_failed");
      expect(response.body.details).toEqual(names.map((name) => ({ path: name, message: "is given more than once" })));
    }
    // A parameter the endpoint does not read is not its concern.
    const other = await backend.call("glucose-summary", { token, path: "?v=1&v=2&tz=UTC" });
    expect(other.status, other.text).toBe(200);
  });

  it("answers 400 on tz when the database does not know a zone that ICU knows", async () => {
    // A database whose tz data is older than the runtime's ICU: the real Postgres, handed a name it
    // has never heard of where the request named Europe/Berlin, answers 22023 "time zone ... not
    // recognized".
    const olderTzData: Database = {
      ...db,
      query: (text, params) => db.query(text, params?.map((p) => (p === "Europe/Berlin" ? "Europe/Atlantis" : p))),
    };
    const logs: string[] = [];
    const token = await registeredCaller(backend, "gs-old-tzdata");
    const response = await getSummary(token, { tz: "Europe/Berlin" }, ownFunction(olderTzData, logs));
    expect(response.status, response.text).toBe(400);
    expect(response.body.error).toBe("validation_failed");
    expect(response.body.details).toEqual([expect.objectContaining({ path: "tz" })]);
    expect(logs.join("\n")).not.toContain("unhandled_error");
  });

  it("answers 404 user_not_found to an unregistered caller and 403 user_inactive to an inactive one", async () => {
    const stranger = await backend.token("gs-stranger");
    const notFound = await getSummary(stranger);
    expect(notFound.status).toBe(404);
    expect(notFound.body.error).toBe("user_not_found");

    const f = fixture("single");
    const token = await callerWithReadings("gs-inactive", f.readings);
    await setInactive(db, "gs-inactive");
    const inactive = await getSummary(token, f.query);
    expect(inactive.status).toBe(403);
    expect(inactive.body.error).toBe("user_inactive");
    expect(inactive.text).not.toContain("summary");
  });

  it("answers 401 missing_token without a token", async () => {
    const response = await getSummary(undefined);
    expect(response.status).toBe(401);
    expect(response.body.error).toBe("missing_token");
  });

  it("reads the readings from the index on (user_id, system_time) alone", async () => {
    // A table as in production: many users, each a small part of it (20 users x 20 days of readings).
    const crowd = await db.query<{ id: number }>(
      `INSERT INTO users (firebase_uid, email)
       SELECT 'gs-crowd-' || i, 'gs-crowd-' || i || '@example.com' FROM generate_series(1, 20) AS i
       RETURNING id`,
    );
    await db.query(
      `INSERT INTO glucose_readings (user_id, record_id, system_time, value, unit, status)
       SELECT u, 'c-' || i, timestamptz '2025-03-01T00:00:00Z' + i * interval '5 minutes', 80 + i % 150, 'mg/dL', 'ok'
       FROM unnest($1::int[]) AS u, generate_series(0, 20 * 288 - 1) AS i`,
      [crowd.map((row) => row.id)],
    );
    // VACUUM sets the visibility map, as autovacuum does for a live table: only then can a scan
    // skip the heap.
    await db.query("VACUUM ANALYZE glucose_readings");
    const plan = await db.query<{ "QUERY PLAN": string }>(`EXPLAIN ${GLUCOSE_SUMMARY_SQL}`, [
      "gs-crowd-7",
      Date.parse("2025-03-03T00:00:00Z"),
      Date.parse("2025-03-17T00:00:00Z"),
      "Europe/Berlin",
    ]);
    const text = plan.map((row) => row["QUERY PLAN"]).join("\n");
    expect(text).toMatch(/Index Only Scan using glucose_readings_user_time_idx on glucose_readings/);
    expect(text).not.toMatch(/(Seq|Bitmap Heap) Scan on glucose_readings/);
  });
});
