// Glucose history (the readings copied from Dexcom into Postgres), with `npm run serve` in its own
// process on a scratch database and the fake Dexcom (test/support/fake-dexcom.ts) served over real
// HTTP by this process:
// - the first sync of 90 days of readings (25,920) for one user: wall time, Dexcom calls, and the
//   statements the server sent to Postgres, counted by a proxy between the two;
// - the scheduler (POST /dexcom-sync/due) over 1,000 connected users: Dexcom calls per user in an
//   hour, and how long a round takes, for the arithmetic of 25,000 users;
// - GET /glucose-summary (90 days) and GET /glucose-readings (14 days) for a user with a year of
//   readings among 1,000 users: p50/p99 at 32 connections; and the summary's query alone.
import { connect as connectTcp, createServer, type Socket } from "node:net";
import { generateKey } from "../shared/crypto/fernet.ts";
import type { Database } from "../shared/db/database.ts";
import { DUE_CONCURRENCY } from "../shared/glucose/due.ts";
import { GLUCOSE_SUMMARY_SQL } from "../shared/glucose/summary.ts";
import { egvSeries, type FakeDexcom, type FakeUser } from "../test/support/fake-dexcom.ts";
import { BENCH_DEXCOM_ENV, benchFakeDexcom, connectWithPair } from "./fake-dexcom.ts";
import { pgbench } from "./pgbench.ts";
import { withScratchDatabase } from "./scratch-database.ts";
import { percent } from "./http.ts";
import { BARE_SERVER, type IdTokens, startIdTokens, withServer } from "./server.ts";
import { alternating, wrk, type WrkResult } from "./wrk.ts";

const CONNECTIONS = 32;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const SYNC_SECRET = "bench-sync-secret-0123456789";
const DAY_MS = 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;
const PER_DAY = 288; // one reading every 5 minutes
const BACKFILL_DAYS = 90; // DEXCOM_BACKFILL_DAYS' default: what a first sync fetches
const SCHEDULED_USERS = 1000;
const READERS = 1000;
const BIG_READER_DAYS = 365;
// The other readers have a week each: a table of 2.1 million rows, filled in about half a minute.
const OTHER_READER_DAYS = 7;
const TZ = "America/Los_Angeles";
// Dexcom's figures: access tokens live 7,200 s, and an app may make 60,000 calls an hour.
const ACCESS_TOKEN_HOURS = 2;
const DEXCOM_CALLS_PER_HOUR_LIMIT = 60_000;
const BUDGET = 50_000; // DEXCOM_CALLS_PER_HOUR's default
const TARGET_USERS = 25_000;
const DUE_RUN_SECONDS = 50;

type Calls = { token: number; dataRange: number; egvs: number };

export function benchGlucose(): Promise<void> {
  return withScratchDatabase("Glucose", run);
}

async function run(database: { url: string; db: Database }): Promise<void> {
  console.log(`\nGlucose history: npm run serve on a scratch database, the fake Dexcom over real HTTP from the bench process, on the same 2 cores`);
  const keys = await startIdTokens();
  const dexcom = benchFakeDexcom();
  const fake = await dexcom.listen();
  const proxy = await statementCounter(new URL(database.url));
  const env = {
    DATABASE_POOL_SIZE: String(CONNECTIONS),
    ...keys.env,
    ENCRYPTION_KEY: generateKey(),
    ...BENCH_DEXCOM_ENV,
    DEXCOM_SYNC_SECRET: SYNC_SECRET,
    DEXCOM_API_BASE_URL: fake.url,
  };
  try {
    // The readers' year first, so the syncs below write into a table of realistic size.
    const seeded = await seedReaders(database.db);

    // The syncs go through the counting proxy; the read load does not (1 MB answers would pay for it).
    const proxied = new URL(database.url);
    proxied.port = String(proxy.port);
    await withServer({ ...env, DATABASE_URL: proxied.toString() }, async (base) => {
      await firstSync(base, dexcom, proxy, keys.idToken);
      await scheduler(base, dexcom, proxy, database.db, keys.idToken);
    });

    await database.db.exec("VACUUM ANALYZE glucose_readings");
    const direct = { ...env, DATABASE_URL: database.url };
    const measured: { summary: Read | null } = { summary: null };
    await withServer(direct, (base) =>
      withServer(direct, async (bare) => {
        measured.summary = await reads(base, bare, database, seeded, keys.idToken);
      }, { script: BARE_SERVER }));
    // After the servers are gone: their 64 pooled connections and pgbench's 32 would not fit under
    // Postgres's default max_connections (100).
    if (measured.summary !== null) await summaryAlone(database, measured.summary.end, measured.summary.result);
  } finally {
    await proxy.close();
    await fake.close();
    await keys.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The first sync of one user with 90 days of readings at Dexcom.

async function firstSync(base: string, dexcom: FakeDexcom, proxy: StatementCounter, idToken: IdTokens): Promise<void> {
  const count = BACKFILL_DAYS * PER_DAY;
  // Starting a minute inside the backfill, so the whole series is within it when the sync runs.
  const start = new Date(Date.now() - BACKFILL_DAYS * DAY_MS + 60_000);
  const user = await connect(base, dexcom, idToken, "bench-sync-1", egvSeries(start, count));

  const calls = callsOf(dexcom);
  const statements = proxy.statements;
  const started = performance.now();
  const response = await fetch(`${base}/functions/v1/dexcom-sync`, { method: "POST", headers: { authorization: `Bearer ${user}` } });
  const body = await response.json();
  const ms = performance.now() - started;
  const spent = since(calls, dexcom);
  const sent = proxy.statements - statements;

  console.log(`  first sync: POST /dexcom-sync for one user with ${BACKFILL_DAYS} days at Dexcom (${count.toLocaleString("en-US")} readings), an empty sync state`);
  line("wall time", `${Math.round(ms)} ms (${Math.round(count / (ms / 1000)).toLocaleString("en-US")} readings/s)`);
  line("readings stored", `${body?.sync?.new_readings} (answer ${response.status})`);
  line("Dexcom calls", `${describeCalls(spent)}`);
  line("statements to Postgres", `${sent} for the whole request, each a round trip (counted by a proxy)`);
  if (response.status !== 200 || body.sync.new_readings !== count) {
    throw new Error(`glucose bench: the first sync answered ${response.status} ${JSON.stringify(body)}, not ${count} new readings`);
  }
}

// ---------------------------------------------------------------------------------------------
// The scheduler over 1,000 connected users: the first round (never synced), then two hours as they
// go on: one where the access tokens are still valid, one where they have all expired (a token
// lives 2 h, so an hourly sync refreshes it every second time).

async function scheduler(base: string, dexcom: FakeDexcom, proxy: StatementCounter, db: Database, idToken: IdTokens): Promise<void> {
  const now = Date.now();
  // Per user: two hours of readings ending 2 h ago; each later "hour" adds the next 12.
  const hours = [egvSeries(new Date(now - 4 * HOUR_MS), 24), egvSeries(new Date(now - 2 * HOUR_MS), 12), egvSeries(new Date(now - HOUR_MS), 12)];
  const users: FakeUser[] = [];
  const connectStarted = performance.now();
  await inTurns(Array.from({ length: SCHEDULED_USERS }, (_, i) => i), CONNECTIONS, async (i) => {
    const fakeUser = dexcom.addUser();
    fakeUser.egvs = freshIds(hours[0]!);
    users.push(fakeUser);
    await connectWithPair(base, dexcom, idToken, `bench-sched-${i + 1}`, fakeUser, "glucose");
  });
  console.log(
    `  scheduler: POST /dexcom-sync/due over ${SCHEDULED_USERS.toLocaleString("en-US")} users connected through POST /dexcom-tokens ` +
      `(in ${(((performance.now() - connectStarted) / 1000)).toFixed(1)} s), called until none is due; ${DUE_CONCURRENCY} users at once`,
  );
  console.log(`    ${"round".padEnd(38)}${"time".padStart(8)}${"users/s".padStart(9)}${"calls".padStart(8)}${"per user".padStart(10)}${"SQL/user".padStart(10)}  Dexcom calls`);

  const first = await round(base, dexcom, proxy, "first sync (never synced)", SCHEDULED_USERS * 24);

  for (const user of users) user.egvs.push(...freshIds(hours[1]!));
  await markDue(db);
  const valid = await round(base, dexcom, proxy, "an hour later, access tokens valid", SCHEDULED_USERS * 12);

  for (const user of users) user.egvs.push(...freshIds(hours[2]!));
  const expired = await db.query(
    `UPDATE dexcom_tokens t SET expires_at = now() - interval '1 minute'
     FROM users u WHERE u.id = t.user_id AND u.firebase_uid LIKE 'bench-sched-%' AND t.is_revoked IS NOT TRUE RETURNING t.id`,
  );
  if (expired.length !== SCHEDULED_USERS) throw new Error(`glucose bench: expired ${expired.length} tokens, not ${SCHEDULED_USERS}`);
  await markDue(db);
  const refreshing = await round(base, dexcom, proxy, "an hour later, access tokens expired", SCHEDULED_USERS * 12);

  // The budget counted in Postgres must be what Dexcom saw.
  const [budget] = await db.query<{ calls: number }>("SELECT coalesce(sum(calls), 0)::int AS calls FROM dexcom_call_budget");
  const seen = dexcom.counts.token + dexcom.counts.dataRange + dexcom.counts.egvs;
  line("budget spent (Postgres) / calls Dexcom saw", `${budget!.calls} / ${seen}${budget!.calls === seen ? "" : "  (they differ)"}`);

  // The arithmetic: an hour of a user is an average of the two steady rounds (one refresh every 2 h).
  const perUserHour = (valid.calls + refreshing.calls) / 2 / SCHEDULED_USERS;
  const statementsPerUserHour = (valid.statements + refreshing.statements) / 2 / SCHEDULED_USERS;
  const hourly = TARGET_USERS * perUserHour;
  const usersPerSecond = SCHEDULED_USERS / ((valid.ms + refreshing.ms) / 2 / 1000);
  const neededPerRun = TARGET_USERS / 60;
  const perRun = usersPerSecond * DUE_RUN_SECONDS;
  const allowedSeconds = (DUE_CONCURRENCY * DUE_RUN_SECONDS) / neededPerRun;
  console.log(`    ${TARGET_USERS.toLocaleString("en-US")} users hourly, from the two steady rounds (an access token lives ${ACCESS_TOKEN_HOURS} h, so every second sync refreshes it):`);
  line(
    "Dexcom calls",
    `${perUserHour.toFixed(2)} per user per hour x ${TARGET_USERS.toLocaleString("en-US")} = ${Math.round(hourly).toLocaleString("en-US")} an hour ` +
      `(budget ${BUDGET.toLocaleString("en-US")}, Dexcom's limit ${DEXCOM_CALLS_PER_HOUR_LIMIT.toLocaleString("en-US")}: ${(hourly / BUDGET * 100).toFixed(0)}% of the budget)`,
  );
  line(
    "statements to Postgres",
    `${statementsPerUserHour.toFixed(1)} per user per hour x ${TARGET_USERS.toLocaleString("en-US")} = ` +
      `${Math.round(TARGET_USERS * statementsPerUserHour).toLocaleString("en-US")} an hour (${(TARGET_USERS * statementsPerUserHour / 3600).toFixed(0)} a second)`,
  );
  line(
    "time",
    `one call a minute must sync ${Math.round(neededPerRun)} users in its ${DUE_RUN_SECONDS} s; measured ${Math.round(usersPerSecond)} users/s ` +
      `= ${Math.round(perRun).toLocaleString("en-US")} per call (${(perRun / neededPerRun).toFixed(0)}x)`,
  );
  line(
    "room for a slower Dexcom",
    `with ${DUE_CONCURRENCY} at once, a user's sync may take up to ${DUE_CONCURRENCY} x ${DUE_RUN_SECONDS} s / ${Math.round(neededPerRun)} = ` +
      `${allowedSeconds.toFixed(1)} s (here: ${(DUE_CONCURRENCY / usersPerSecond * 1000).toFixed(0)} ms)`,
  );
  if (first.failed + valid.failed + refreshing.failed > 0) throw new Error("glucose bench: some scheduled syncs failed");
}

interface Round {
  ms: number;
  calls: number;
  statements: number;
  failed: number;
}

async function round(base: string, dexcom: FakeDexcom, proxy: StatementCounter, name: string, expectedNew: number): Promise<Round> {
  const calls = callsOf(dexcom);
  const statements = proxy.statements;
  const started = performance.now();
  const totals = { users: 0, new_readings: 0, failed: 0, invocations: 0 };
  for (;;) {
    const response = await fetch(`${base}/functions/v1/dexcom-sync/due`, { method: "POST", headers: { authorization: `Bearer ${SYNC_SECRET}` } });
    const body = await response.json();
    if (response.status !== 200) throw new Error(`glucose bench: POST /dexcom-sync/due answered ${response.status} ${JSON.stringify(body)}`);
    totals.invocations += 1;
    totals.users += body.users;
    totals.new_readings += body.new_readings;
    totals.failed += body.failed;
    if (body.deferred === 0) break;
    if (totals.invocations >= 20) throw new Error(`glucose bench: ${body.deferred} users still due after 20 calls`);
  }
  const ms = performance.now() - started;
  const spent = since(calls, dexcom);
  const total = spent.token + spent.dataRange + spent.egvs;
  const sent = proxy.statements - statements;
  console.log(
    `    ${name.padEnd(38)}${`${(ms / 1000).toFixed(1)} s`.padStart(8)}${Math.round(totals.users / (ms / 1000)).toString().padStart(9)}${
      String(total).padStart(8)
    }${(total / totals.users).toFixed(2).padStart(10)}${(sent / totals.users).toFixed(1).padStart(10)}  ${describeCalls(spent)}; ` +
      `${totals.users} users, ${totals.new_readings.toLocaleString("en-US")} new readings, ${totals.failed} failed, ${totals.invocations} call(s)`,
  );
  if (totals.users !== SCHEDULED_USERS || totals.new_readings !== expectedNew) {
    throw new Error(`glucose bench: the round "${name}" synced ${totals.users} users and ${totals.new_readings} readings, not ${SCHEDULED_USERS} and ${expectedNew}`);
  }
  return { ms, calls: total, statements: sent, failed: totals.failed };
}

async function markDue(db: Database): Promise<void> {
  const due = await db.query(
    `UPDATE dexcom_sync_state s SET next_due_at = now() FROM users u
     WHERE u.id = s.user_id AND u.firebase_uid LIKE 'bench-sched-%' RETURNING s.user_id`,
  );
  if (due.length !== SCHEDULED_USERS) throw new Error(`glucose bench: marked ${due.length} users due, not ${SCHEDULED_USERS}`);
}

// ---------------------------------------------------------------------------------------------
// Reading: 1,000 users' readings inserted with SQL, one of them with a year.

interface Seeded {
  rows: number;
  seconds: number;
}

async function seedReaders(db: Database): Promise<Seeded> {
  const started = performance.now();
  await db.query(
    `INSERT INTO users (firebase_uid, email) SELECT 'bench-reader-' || i, 'bench-reader-' || i || '@example.com' FROM generate_series(1, $1::int) i`,
    [READERS],
  );
  // Readings every 5 minutes back from now: a daily swing with noise, lows below 40 stored as
  // Dexcom sends them (no value, status low), UUID record ids as Dexcom's. Two halves at once,
  // one per core.
  const insert = (half: number) =>
    db.query(
      `INSERT INTO glucose_readings (user_id, record_id, system_time, display_time, value, unit, status, trend, trend_rate,
         rate_unit, display_device, transmitter_generation, transmitter_id, transmitter_ticks)
       SELECT u.id, gen_random_uuid()::text, r.at,
              to_char(r.at AT TIME ZONE 'UTC' - interval '8 hours', 'YYYY-MM-DD"T"HH24:MI:SS') || '-08:00',
              CASE WHEN v.mg >= 40 THEN v.mg END, 'mg/dL', CASE WHEN v.mg >= 40 THEN 'ok' ELSE 'low' END,
              (ARRAY['flat', 'fortyFiveUp', 'singleUp', 'fortyFiveDown', 'singleDown'])[1 + r.i % 5], round((random() * 4 - 2)::numeric, 1),
              'mg/dL/min', 'iOS', 'g7', 'tx' || u.id, 1000000 + r.i * 300
       FROM users u
       CROSS JOIN LATERAL (
         SELECT i, date_trunc('minute', now()) - i * interval '5 minutes' AS at
         FROM generate_series(0, CASE WHEN u.firebase_uid = 'bench-reader-1' THEN $1::int ELSE $2::int END - 1) i
       ) r
       CROSS JOIN LATERAL (SELECT round(140 + 100 * sin(r.i * 2 * pi() / 288 + u.id) + 60 * (random() - 0.5))::int AS mg) v
       WHERE u.firebase_uid LIKE 'bench-reader-%' AND u.id % 2 = $3`,
      [BIG_READER_DAYS * PER_DAY, OTHER_READER_DAYS * PER_DAY, half],
    );
  await Promise.all([insert(0), insert(1)]);
  await db.query(
    `INSERT INTO dexcom_sync_state (user_id, synced_at, last_new_readings, newest_reading_at, next_due_at)
     SELECT u.id, now(), 12, date_trunc('minute', now()), now() + interval '1 hour' FROM users u WHERE u.firebase_uid LIKE 'bench-reader-%'`,
  );
  await db.exec("VACUUM ANALYZE glucose_readings");
  const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM glucose_readings");
  return { rows: row!.n, seconds: (performance.now() - started) / 1000 };
}

/** The summary endpoint's load, for the statement's own figures after: its window's end and its rate. */
interface Read {
  end: Date;
  result: WrkResult;
}

async function reads(
  base: string,
  bare: string,
  database: { url: string; db: Database },
  seeded: Seeded,
  idToken: IdTokens,
): Promise<Read | null> {
  const [table] = await database.db.query<{ rows: number; users: number; size: string }>(
    `SELECT count(*)::int AS rows, count(DISTINCT user_id)::int AS users,
            pg_size_pretty(pg_total_relation_size('glucose_readings')) AS size FROM glucose_readings`,
  );
  console.log(
    `  reading: one user with ${BIG_READER_DAYS} days (${(BIG_READER_DAYS * PER_DAY).toLocaleString("en-US")} readings), ${READERS - 1} others with ` +
      `${OTHER_READER_DAYS} days each (${seeded.rows.toLocaleString("en-US")} rows inserted with SQL in ${seeded.seconds.toFixed(0)} s); ` +
      `the table now ${table!.rows.toLocaleString("en-US")} rows of ${table!.users.toLocaleString("en-US")} users, ${table!.size}`,
  );
  const token = await idToken("bench-reader-1");
  const end = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const summaryPath = `/functions/v1/glucose-summary?${
    new URLSearchParams({ start: new Date(end.getTime() - 90 * DAY_MS).toISOString(), end: end.toISOString(), tz: TZ })
  }`;
  const readingsPath = `/functions/v1/glucose-readings?${
    new URLSearchParams({ start: new Date(end.getTime() - 14 * DAY_MS).toISOString(), end: end.toISOString() })
  }`;

  // One of each first: they must answer the big user's readings, or the numbers measure nothing.
  const summary = await fetch(`${base}${summaryPath}`, { headers: { authorization: `Bearer ${token}` } });
  const summaryText = await summary.text();
  const readings = await fetch(`${base}${readingsPath}`, { headers: { authorization: `Bearer ${token}` } });
  const readingsText = await readings.text();
  const counted = summary.status === 200 ? JSON.parse(summaryText).summary.readings : null;
  const listed = readings.status === 200 ? JSON.parse(readingsText).readings.length : null;
  if (!(counted > 89 * PER_DAY) || !(listed > 13 * PER_DAY)) {
    throw new Error(`glucose bench: GET /glucose-summary answered ${summary.status} (${counted} readings), GET /glucose-readings ${readings.status} (${listed})`);
  }

  // The bare handler must answer the very same bytes, or the comparison compares nothing.
  for (const [path, text] of [[summaryPath, summaryText], [readingsPath, readingsText]] as const) {
    const answer = await fetch(`${bare}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (answer.status !== 200 || await answer.text() !== text) {
      throw new Error(`glucose bench: the bare handler answered ${path.split("?")[0]} with ${answer.status} and other bytes than ours`);
    }
  }

  const targets = [
    { name: `GET /glucose-summary, 90 d (${counted.toLocaleString("en-US")} readings)`, path: summaryPath },
    { name: `GET /glucose-readings, 14 d (${listed.toLocaleString("en-US")}, ${(readingsText.length / 1e6).toFixed(2)} MB)`, path: readingsPath },
  ];
  console.log(
    `    the year's user; the summary in ${TZ}; the same request over and over; bare: the bare reference handler ` +
      `(the same SQL, none of our layers), in turns with ours`,
  );
  console.log(
    `    ${"endpoint".padEnd(46)}${"one at a time".padStart(15)}${"req/s".padStart(8)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}` +
      `${"errors".padStart(8)}${"bare req/s".padStart(11)}${"share".padStart(7)}`,
  );
  console.log(`    ${"".padEnd(46)}${"median ms".padStart(15)}${`(wrk, ${CONNECTIONS} connections, ${SECONDS} s)`.padStart(34)}`);
  const results: WrkResult[] = [];
  for (const target of targets) {
    const alone = await oneAtATime(`${base}${target.path}`, token, 20);
    const request = [{ method: "GET" as const, path: target.path, headers: { authorization: `Bearer ${token}` } }];
    const pair = await alternating(base, bare, request, { connections: CONNECTIONS, seconds: SECONDS, rounds: 1 });
    if (pair === null) {
      console.log("    skipped: the load generator wrk is not installed (apt-get install wrk)");
      return null;
    }
    const [result, reference] = pair;
    results.push(result);
    console.log(
      `    ${target.name.padEnd(46)}${alone.toFixed(1).padStart(15)}${result.rps.toFixed(0).padStart(8)}${result.p50.toFixed(1).padStart(9)}${
        result.p99.toFixed(1).padStart(9)
      }${`${result.errors}/${reference.errors}`.padStart(8)}${reference.rps.toFixed(0).padStart(11)}${percent(result.rps / reference.rps).padStart(7)}`,
    );
  }
  return { end, result: results[0]! };
}

/** The median time of `count` requests sent one after another (after one not counted), in ms. */
async function oneAtATime(url: string, token: string, count: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= count; i++) {
    const started = performance.now();
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`glucose bench: ${url} answered ${response.status}`);
    if (i > 0) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

// The summary's one statement in the database, without HTTP: EXPLAIN ANALYZE's execution time (the
// aim: under 50 ms), and pgbench running it at 32 clients beside the endpoint's rate.
async function summaryAlone(database: { url: string; db: Database }, end: Date, http: WrkResult): Promise<void> {
  const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
  // The same statement with its parameters written in; planned as the server's unnamed statements
  // are, with the values at hand. Comments go, so pgbench may take it as one line.
  const sql = GLUCOSE_SUMMARY_SQL
    .replaceAll("$1", literal("bench-reader-1"))
    .replaceAll("$2", literal(String(end.getTime() - 90 * DAY_MS)))
    .replaceAll("$3", literal(String(end.getTime())))
    .replaceAll("$4", literal(TZ))
    .replace(/--[^\n]*/g, "")
    .replace(/\s+/g, " ")
    .trim();
  // Run as it is, one at a time from here (a local round trip included), then EXPLAIN ANALYZE
  // (TIMING OFF: per-node clocks would slow it) for Postgres's own execution time and the plan.
  const plain = await median(7, async () => {
    const started = performance.now();
    await database.db.query(sql);
    return performance.now() - started;
  });
  let heapFetches = 0;
  let scan = "";
  const executed = await median(7, async () => {
    const [row] = await database.db.query<Record<string, unknown>>(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${sql}`);
    const raw = Object.values(row!)[0];
    const [plan] = (typeof raw === "string" ? JSON.parse(raw) : raw) as [{ "Execution Time": number; Plan: PlanNode }];
    const found = findScan(plan.Plan);
    scan = found?.["Node Type"] ?? "no scan of glucose_readings";
    heapFetches = found?.["Heap Fetches"] ?? 0;
    return plan["Execution Time"];
  });
  console.log(`    the summary's query alone (GLUCOSE_SUMMARY_SQL, 90 days, in the database; aim under 50 ms):`);
  line("run one at a time, 7 runs", `median ${plain.median.toFixed(1)} ms (${plain.min.toFixed(1)} to ${plain.max.toFixed(1)}): aim ${plain.median < 50 ? "met" : "missed"}`);
  line("EXPLAIN ANALYZE's execution time, 7 runs", `median ${executed.median.toFixed(1)} ms (${executed.min.toFixed(1)} to ${executed.max.toFixed(1)})`);
  line("its scan of glucose_readings", `${scan}, ${heapFetches} heap fetches`);
  const tps = await pgbench(database.url, `${sql};\n`, { clients: CONNECTIONS, seconds: SECONDS });
  line(
    `pgbench, ${CONNECTIONS} clients, ${SECONDS} s`,
    tps === null ? "n/a (pgbench not installed)" : `${tps.toFixed(1)} tps; the endpoint at ${CONNECTIONS} connections: ${http.rps.toFixed(1)} req/s (${(http.rps / tps).toFixed(2)}x)`,
  );
}

async function median(runs: number, measure: () => Promise<number>): Promise<{ median: number; min: number; max: number }> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await measure());
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, min: times[0]!, max: times.at(-1)! };
}

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Heap Fetches"?: number;
  Plans?: PlanNode[];
}

function findScan(node: PlanNode): PlanNode | null {
  if (node["Relation Name"] === "glucose_readings") return node;
  for (const child of node.Plans ?? []) {
    const found = findScan(child);
    if (found) return found;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

/** Registers uid and stores a pair the fake issued for a new Dexcom user with these readings; the ID token. */
async function connect(base: string, dexcom: FakeDexcom, idToken: IdTokens, uid: string, egvs: ReturnType<typeof egvSeries>): Promise<string> {
  const user = dexcom.addUser();
  user.egvs = egvs;
  return (await connectWithPair(base, dexcom, idToken, uid, user, "glucose")).idToken;
}

/** The same readings under new record ids (Dexcom's ids are per user). */
function freshIds(records: ReturnType<typeof egvSeries>): ReturnType<typeof egvSeries> {
  return records.map((record) => ({ ...record, recordId: crypto.randomUUID() }));
}

/** Runs fn over items, at most `width` at a time. */
async function inTurns<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

function callsOf(dexcom: FakeDexcom): Calls {
  return { token: dexcom.counts.token, dataRange: dexcom.counts.dataRange, egvs: dexcom.counts.egvs };
}

function since(before: Calls, dexcom: FakeDexcom): Calls {
  const now = callsOf(dexcom);
  return { token: now.token - before.token, dataRange: now.dataRange - before.dataRange, egvs: now.egvs - before.egvs };
}

function describeCalls(calls: Calls): string {
  return `token ${calls.token}, dataRange ${calls.dataRange}, egvs ${calls.egvs}`;
}

function line(label: string, value: string): void {
  console.log(`    ${label.padEnd(44)}${value}`);
}

// ---------------------------------------------------------------------------------------------
// Counting the server's statements: a TCP proxy between it and Postgres reads the messages the
// server sends (the frontend side of the wire protocol) and counts each Sync (the end of an
// extended-protocol statement, which the server's driver sends for every query) and each simple
// Query. The server waits for each statement's answer before its next, so each is a round trip.

interface StatementCounter {
  port: number;
  readonly statements: number;
  close(): Promise<void>;
}

async function statementCounter(target: URL): Promise<StatementCounter> {
  const sockets = new Set<Socket>();
  let statements = 0;
  const server = createServer((client) => {
    const upstream = connectTcp(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy());
    }
    client.on("data", frontendMessages(() => statements++));
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : 0,
    get statements() {
      return statements;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A reader of the frontend message stream, fed chunk by chunk: first untyped start-up messages
 * (length, code; an SSLRequest may precede the StartupMessage), then typed ones (a byte, a
 * length that counts itself). Calls onStatement for each Sync ('S') and Query ('Q').
 */
function frontendMessages(onStatement: () => void): (chunk: Uint8Array) => void {
  const STARTUP_PROTOCOL_3 = 196608;
  let startup = true;
  const header = new Uint8Array(8);
  const view = new DataView(header.buffer);
  let have = 0;
  let skip = 0;
  return (chunk) => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      header[have++] = chunk[i++]!;
      if (have < (startup ? 8 : 5)) continue;
      have = 0;
      if (startup) {
        skip = view.getInt32(0) - 8;
        if (view.getInt32(4) === STARTUP_PROTOCOL_3) startup = false;
      } else {
        skip = view.getInt32(1) - 4;
        if (header[0] === 0x53 /* S */ || header[0] === 0x51 /* Q */) onStatement();
      }
    }
  };
}
