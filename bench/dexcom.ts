// Dexcom through us, against the fake Dexcom (test/support/fake-dexcom.ts) served over real HTTP in
// this process, with `npm run serve` in its own process: GET /dexcom-egvs at 32 concurrent
// connections, in alternating rounds with the bare reference handler (bare-server.ts: the same
// token and budget SQL, the same decryption and call to the fake, none of our layers; our share of
// its rate is what our layers cost), and the same load sent to the fake directly; and a refresh
// storm, 1,000 requests at once from 50 users whose tokens expired, which must cost exactly one
// refresh per user and answer every request 200.
import { generateKey } from "../shared/crypto/fernet.ts";
import type { Database } from "../shared/db/database.ts";
import { egvSeries, type FakeDexcom } from "../test/support/fake-dexcom.ts";
import { BENCH_DEXCOM_ENV, benchFakeDexcom, type Connected, connectWithPair } from "./fake-dexcom.ts";
import { withScratchDatabase } from "./scratch-database.ts";
import { percent } from "./http.ts";
import { BARE_SERVER, type IdTokens, startIdTokens, withServer } from "./server.ts";
import { alternating, wrk, type WrkResult } from "./wrk.ts";

const CONNECTIONS = 32;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
const STORM_USERS = 50;
const STORM_REQUESTS_PER_USER = 20;
const READINGS_PER_DAY = 288;
const WINDOW_MS = 3 * 3600 * 1000;

export function benchDexcom(): Promise<void> {
  return withScratchDatabase("Dexcom", run);
}

async function run(database: { url: string; db: Database }): Promise<void> {
  const tokens = await startIdTokens();
  const dexcom = benchFakeDexcom();
  const fake = await dexcom.listen();
  const env = {
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: String(CONNECTIONS),
    ...tokens.env,
    ENCRYPTION_KEY: generateKey(),
    ...BENCH_DEXCOM_ENV,
    DEXCOM_API_BASE_URL: fake.url,
  };
  try {
    await withServer(env, (base) =>
      withServer(env, async (bare) => {
        await measureEgvs(base, bare, fake.url, dexcom, tokens.idToken);
        await refreshStorm(base, dexcom, database.db, tokens.idToken);
      }, { script: BARE_SERVER }));
  } finally {
    await fake.close();
    await tokens.close();
  }
}

async function measureEgvs(
  base: string,
  bare: string,
  fakeUrl: string,
  dexcom: FakeDexcom,
  idToken: IdTokens,
): Promise<void> {
  // A day of readings each, ending now; the app asks for the last 3 hours of it.
  const end = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const dayStart = new Date(end.getTime() - 24 * 3600 * 1000);
  const start = new Date(end.getTime() - WINDOW_MS);
  const users = await Promise.all(
    Array.from({ length: CONNECTIONS }, (_, i) => connect(base, dexcom, idToken, `bench-egvs-${i + 1}`, dayStart)),
  );
  const ours = `/functions/v1/dexcom-egvs?${new URLSearchParams({ startDate: start.toISOString(), endDate: end.toISOString() })}`;
  const theirs = `/v3/users/self/egvs?${
    new URLSearchParams({ startDate: start.toISOString().slice(0, 19), endDate: end.toISOString().slice(0, 19) })
  }`;

  // One request each way first: all must answer the same readings, or the numbers compare nothing.
  const bodies = await Promise.all([
    fetch(`${base}${ours}`, { headers: { authorization: `Bearer ${users[0]!.idToken}` } }),
    fetch(`${bare}${ours}`, { headers: { authorization: `Bearer ${users[0]!.idToken}` } }),
    fetch(`${fakeUrl}${theirs}`, { headers: { authorization: `Bearer ${users[0]!.accessToken}` } }),
  ].map(async (pending) => {
    const answer = await pending;
    return { status: answer.status, text: await answer.text() };
  }));
  const [through] = bodies;
  if (bodies.some((body) => body.status !== 200 || body.text !== through!.text)) {
    throw new Error(
      `dexcom bench: GET /dexcom-egvs answered ${bodies.map((body) => body.status).join(", ")} (ours, bare, the fake); ` +
        `bodies ${bodies.every((body) => body.text === through!.text) ? "equal" : "differ"}`,
    );
  }
  const readings = JSON.parse(through!.text).records.length;

  console.log(
    `\nDexcom: GET /dexcom-egvs (3 h window, ${readings} readings, ${through!.text.length} bytes) at ${CONNECTIONS} concurrent connections, ` +
      `${SECONDS} s each; the fake Dexcom serves real HTTP from the bench process on the same 2 cores`,
  );
  console.log(`  ${"target".padEnd(34)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"errors".padStart(8)}`);
  const requests = users.map((user) => ({ method: "GET" as const, path: ours, headers: { authorization: `Bearer ${user.idToken}` } }));
  // Ours and the bare handler in turns, so both meet the same moments of a busy machine.
  const pair = await alternating(base, bare, requests, { connections: CONNECTIONS, seconds: SECONDS, rounds: 2 });
  await load(fakeUrl, theirs, users.map((user) => user.accessToken), 1); // warm-up
  const direct = await load(fakeUrl, theirs, users.map((user) => user.accessToken), SECONDS);
  if (pair === null || direct === null) {
    console.log("  skipped: the load generator wrk is not installed (apt-get install wrk)");
    return;
  }
  const [us, them] = pair;
  const rows: [string, WrkResult][] = [
    ["through us: /dexcom-egvs", us],
    ["bare handler: /dexcom-egvs", them],
    ["the fake directly: /v3/.../egvs", direct],
  ];
  for (const [name, result] of rows) {
    console.log(
      `  ${name.padEnd(34)}${result.rps.toFixed(0).padStart(9)}${result.p50.toFixed(1).padStart(9)}${
        result.p99.toFixed(1).padStart(9)
      }${String(result.errors).padStart(8)}`,
    );
  }
  console.log(
    `  through us / bare handler: ${percent(us.rps / them.rps)} (share; aim at least 90%); ` +
      `through us / directly: ${(us.rps / direct.rps).toFixed(2)}x the requests per second, p50 ${(us.p50 / direct.p50).toFixed(1)}x`,
  );
}

// 50 users whose tokens expired all ask at once, 20 requests each: per user, one request refreshes
// (Dexcom's refresh tokens are single use) and the others wait for the pair it stores.
async function refreshStorm(
  base: string,
  dexcom: FakeDexcom,
  db: Database,
  idToken: IdTokens,
): Promise<void> {
  const end = new Date();
  const users = await Promise.all(
    Array.from({ length: STORM_USERS }, (_, i) =>
      connect(base, dexcom, idToken, `bench-storm-${i + 1}`, new Date(end.getTime() - 24 * 3600 * 1000))),
  );
  const expired = await db.query(
    `UPDATE dexcom_tokens t SET expires_at = now() - interval '1 minute'
     FROM users u WHERE u.id = t.user_id AND u.firebase_uid LIKE 'bench-storm-%' AND t.is_revoked IS NOT TRUE
     RETURNING t.id`,
  );
  if (expired.length !== STORM_USERS) throw new Error(`dexcom bench: expired ${expired.length} tokens, not ${STORM_USERS}`);

  const query = new URLSearchParams({ startDate: new Date(end.getTime() - WINDOW_MS).toISOString(), endDate: end.toISOString() });
  const total = STORM_USERS * STORM_REQUESTS_PER_USER;
  const refreshesBefore = dexcom.counts.refresh;
  const answeredAt: number[] = [];
  const started = performance.now();
  const statuses = await Promise.all(
    users.flatMap((user) =>
      Array.from({ length: STORM_REQUESTS_PER_USER }, () =>
        fetch(`${base}/functions/v1/dexcom-egvs?${query}`, { headers: { authorization: `Bearer ${user.idToken}` } })
          .then(async (response) => {
            await response.arrayBuffer();
            answeredAt.push(performance.now() - started);
            return response.status;
          })
          .catch(() => 0))
    ),
  );
  const ms = performance.now() - started;
  answeredAt.sort((a, b) => a - b);
  const median = answeredAt[Math.floor(answeredAt.length / 2)] ?? NaN;
  const refreshes = dexcom.counts.refresh - refreshesBefore;
  const ok = statuses.filter((status) => status === 200).length;
  const others = [...new Set(statuses.filter((status) => status !== 200))].map((s) => (s === 0 ? "no answer" : String(s)));

  console.log(
    `  refresh storm: ${STORM_USERS} users with expired tokens, ${STORM_REQUESTS_PER_USER} requests each, ` +
      `${total.toLocaleString("en-US")} at once`,
  );
  line("refreshes at Dexcom", `${refreshes} (expected ${STORM_USERS}, one per user)`);
  line("answered 200", `${ok} of ${total}${others.length > 0 ? ` (others: ${others.join(", ")})` : ""}`);
  line("time until all were answered", `${Math.round(ms)} ms (half of them within ${Math.round(median)} ms)`);
  if (refreshes !== STORM_USERS || ok !== total) {
    throw new Error(`dexcom bench: the refresh storm made ${refreshes} refreshes (not ${STORM_USERS}) and answered ${ok} of ${total} with 200`);
  }
}

/**
 * Registers uid, gives them a Dexcom account with a day of readings from dayStart, and stores a
 * pair the fake issued for it through POST /dexcom-tokens, as an app that did the OAuth itself.
 */
function connect(base: string, dexcom: FakeDexcom, idToken: IdTokens, uid: string, dayStart: Date): Promise<Connected> {
  const user = dexcom.addUser();
  user.egvs = egvSeries(dayStart, READINGS_PER_DAY);
  return connectWithPair(base, dexcom, idToken, uid, user, "dexcom");
}

// Requests cycle through the connections' tokens; null when wrk is not there.
function load(url: string, path: string, tokens: string[], seconds: number): Promise<WrkResult | null> {
  const requests = tokens.map((token) => ({ method: "GET" as const, path, headers: { authorization: `Bearer ${token}` } }));
  return wrk(url, requests, { connections: CONNECTIONS, seconds });
}

function line(label: string, value: string): void {
  console.log(`    ${label.padEnd(32)}${value}`);
}
