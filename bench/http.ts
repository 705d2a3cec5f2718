// Requests per second and p50/p99 latency of POST /users, GET /dexcom-tokens and POST /dexcom-tokens
// under 32 concurrent connections, with RS256 ID tokens verified for real, against `npm run serve`
// in its own process; beside the same load on the bare reference handler (bare-server.ts: Deno.serve
// + postgres.js, the same SQL and pool, none of our layers), taken in alternating rounds in the
// same run, and our share of its rate (the aim: at least 90%); and the same SQL run by pgbench at
// the same concurrency.
import { createFirebaseVerifier } from "../shared/auth/firebase-verifier.ts";
import { generateKey } from "../shared/crypto/fernet.ts";
import { pgbench } from "./pgbench.ts";
import { withScratchDatabase } from "./scratch-database.ts";
import { BARE_SERVER, type IdTokenIssuer, PROJECT_ID, startIdTokens, withServer } from "./server.ts";
import { alternating, type WrkRequest, type WrkResult } from "./wrk.ts";

export const CONNECTIONS = 32;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 10);
/** Ours and the bare handler take turns this many times per scenario, SECONDS / ROUNDS each. */
const ROUNDS = 4;
/** The share of the bare handler's rate our endpoints aim at. */
export const SHARE_AIM = 0.9;

export interface Scenario {
  name: string;
  method: "GET" | "POST";
  fn: string;
  body?: string;
  /** The same work as SQL, for pgbench; :n is the connection's user number (1..32). */
  sql: string;
}

const ACCESS = "a".repeat(600);
const REFRESH = "r".repeat(600);
// A Fernet token of a 600-byte plaintext has the length the table stores.
const CIPHERTEXT_LENGTH = Math.ceil((1 + 8 + 16 + (Math.floor(600 / 16) + 1) * 16 + 32) / 3) * 4;

export const SCENARIOS: Scenario[] = [
  {
    name: "POST /users",
    method: "POST",
    fn: "users",
    sql: "SELECT * FROM dms.register_user('bench-user-' || :n, 'bench-user-' || :n || '@example.com', true);",
  },
  {
    name: "GET /dexcom-tokens",
    method: "GET",
    fn: "dexcom-tokens",
    sql: `SELECT u.is_active, t.id, t.token_type, t.scope, t.expires_at, t.created_at, t.updated_at
      FROM users u LEFT JOIN LATERAL (SELECT t.id, t.token_type, t.scope, t.expires_at, t.created_at, t.updated_at
      FROM dexcom_tokens t WHERE t.user_id = u.id AND t.is_revoked IS NOT TRUE
      ORDER BY t.created_at DESC NULLS LAST, t.id DESC LIMIT 1) t ON true WHERE u.firebase_uid = 'bench-user-' || :n;`,
  },
  {
    name: "POST /dexcom-tokens",
    method: "POST",
    fn: "dexcom-tokens",
    body: JSON.stringify({ access_token: ACCESS, refresh_token: REFRESH, expires_in: 7200 }),
    sql: `SELECT * FROM dms.store_dexcom_token('bench-user-' || :n, '${"x".repeat(CIPHERTEXT_LENGTH)}', '${
      "y".repeat(CIPHERTEXT_LENGTH)
    }', 7200, 'Bearer', 'offline_access', NULL, 'benchkeyid');`,
  },
];

/** The server's environment for these scenarios: the scratch database, the key set, a Fernet key. */
export function httpEnv(databaseUrl: string, keys: IdTokenIssuer, poolSize: number): Record<string, string> {
  return { DATABASE_URL: databaseUrl, DATABASE_POOL_SIZE: String(poolSize), ...keys.env, ENCRYPTION_KEY: generateKey() };
}

export function benchHttp(): Promise<void> {
  return withScratchDatabase("HTTP", run);
}

async function run(database: { url: string }): Promise<void> {
  console.log(
    `\nHTTP: ${CONNECTIONS} concurrent connections, ${SECONDS} s per endpoint and server (${ROUNDS} alternating rounds); ` +
      `real RS256 ID tokens, one per connection, verified by the server; pool ${CONNECTIONS} for both servers`,
  );
  const keys = await startIdTokens();
  const env = httpEnv(database.url, keys, CONNECTIONS);
  try {
    const outcome: { measured: Measured[] | null } = { measured: null };
    await withServer(env, (ours) =>
      withServer(env, async (bare) => {
        outcome.measured = await measure(ours, bare, keys);
      }, { script: BARE_SERVER }));
    // pgbench after the servers are gone: their 64 pooled connections and its 32 would not fit
    // under Postgres's default max_connections (100).
    if (outcome.measured === null) console.log("  skipped: the load generator wrk is not installed (apt-get install wrk)");
    else await report(outcome.measured, database.url);
    await benchColdVerification(keys);
  } finally {
    await keys.close();
  }
}

interface Measured {
  scenario: Scenario;
  ours: WrkResult;
  bare: WrkResult;
}

async function measure(ours: string, bare: string, keys: IdTokenIssuer): Promise<Measured[] | null> {
  const tokens = await registeredUsers(ours, keys);
  const measured: Measured[] = [];
  for (const scenario of SCENARIOS) {
    const requests = requestsOf(scenario, tokens);
    await sameAnswers(ours, bare, scenario, requests[0]!);
    const pair = await alternating(ours, bare, requests, { connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS });
    if (pair === null) return null;
    measured.push({ scenario, ours: pair[0], bare: pair[1] });
  }
  return measured;
}

async function report(measured: Measured[], databaseUrl: string): Promise<void> {
  console.log(
    `  ${"endpoint".padEnd(21)}${"ours req/s".padStart(11)}${"p50 ms".padStart(8)}${"p99 ms".padStart(8)}${"errors".padStart(8)}` +
      `${"bare req/s".padStart(11)}${"share".padStart(7)}${"pgbench tps".padStart(13)}${"ratio".padStart(7)}`,
  );
  for (const { scenario, ours: us, bare: them } of measured) {
    // pgbench runs the statement with one client per connection; each client works as user :n.
    const script = `\\set n random(1, ${CONNECTIONS})\n${scenario.sql.replaceAll("\n", " ")}\n`;
    const sqlTps = await pgbench(databaseUrl, script, { clients: CONNECTIONS, seconds: SECONDS });
    console.log(
      `  ${scenario.name.padEnd(21)}${us.rps.toFixed(0).padStart(11)}${us.p50.toFixed(1).padStart(8)}${us.p99.toFixed(1).padStart(8)}` +
        `${`${us.errors}/${them.errors}`.padStart(8)}${them.rps.toFixed(0).padStart(11)}${percent(us.rps / them.rps).padStart(7)}` +
        `${sqlTps === null ? "n/a".padStart(13) : sqlTps.toFixed(0).padStart(13)}` +
        `${sqlTps === null ? "" : `${(us.rps / sqlTps).toFixed(2)}x`.padStart(7)}`,
    );
  }
  const lowest = Math.min(...measured.map((m) => m.ours.rps / m.bare.rps));
  console.log(
    `  share: ours / bare (Deno.serve + postgres.js: the same SQL and pool, no verification, validation, logging or CORS), ` +
      `lowest ${percent(lowest)}, aim at least ${percent(SHARE_AIM)}: ${lowest >= SHARE_AIM ? "met" : "missed"}; ` +
      `errors: ours/bare; ratio: ours / pgbench`,
  );
}

/** One ID token per connection, for users bench-user-1..32, each registered through POST /users. */
export async function registeredUsers(base: string, keys: IdTokenIssuer): Promise<string[]> {
  const tokens = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => keys.idToken(`bench-user-${i + 1}`)));
  for (const token of tokens) {
    const response = await fetch(`${base}/functions/v1/users`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    await response.body?.cancel();
    if (!response.ok) throw new Error(`http bench: registering a bench user answered ${response.status}`);
  }
  return tokens;
}

/** The scenario's requests, cycling through the users' tokens. */
export function requestsOf(scenario: Scenario, tokens: string[]): WrkRequest[] {
  return tokens.map((token) => ({
    method: scenario.method,
    path: `/functions/v1/${scenario.fn}`,
    headers: { authorization: `Bearer ${token}`, ...(scenario.body ? { "content-type": "application/json" } : {}) },
    body: scenario.body,
  }));
}

// Both servers must answer the same status and the same fields, or the comparison compares nothing.
async function sameAnswers(ours: string, bare: string, scenario: Scenario, request: WrkRequest): Promise<void> {
  const [a, b] = await Promise.all([ours, bare].map(async (origin) => {
    const response = await fetch(`${origin}${request.path}`, { method: request.method, headers: request.headers, body: request.body });
    return { status: response.status, body: await response.json() };
  }));
  const shape = (body: unknown) => JSON.stringify(fieldsOf(body));
  if (a!.status !== b!.status || shape(a!.body) !== shape(b!.body)) {
    throw new Error(`http bench: ${scenario.name} answered ${a!.status} ${shape(a!.body)}, the bare handler ${b!.status} ${shape(b!.body)}`);
  }
}

function fieldsOf(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return typeof value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fieldsOf(item)]));
}

export function percent(share: number): string {
  return `${(share * 100).toFixed(0)}%`;
}

// The server remembers a verified token until it expires, so the table above pays RSA once per
// user; a request with a token the server has not seen pays it in full, at this rate.
async function benchColdVerification(keys: IdTokenIssuer): Promise<void> {
  const tokens = await Promise.all(Array.from({ length: 300 }, (_, i) => keys.idToken(`cold-${i}`)));
  const verifier = createFirebaseVerifier({ projectId: PROJECT_ID, jwksUrl: keys.jwksUrl });
  await verifier.verify(tokens.pop()!); // fetches the key set
  const started = performance.now();
  for (const token of tokens) await verifier.verify(token);
  const rate = tokens.length / ((performance.now() - started) / 1000);
  console.log(`  first verification of a token (RS256, not yet remembered): ${rate.toFixed(0)} per second, one at a time`);
}
