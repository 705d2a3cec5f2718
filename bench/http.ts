// Requests per second and p50/p99 latency of POST /users, GET /dexcom-tokens and POST /dexcom-tokens
// under 32 concurrent connections, with RS256 ID tokens verified for real, against `npm run serve`
// in its own process; and the same SQL run by pgbench at the same concurrency, for the ratio.
import { createFirebaseVerifier } from "../shared/auth/firebase-verifier.ts";
import { generateKey } from "../shared/crypto/fernet.ts";
import { pgbench } from "./pgbench.ts";
import { withScratchDatabase } from "./scratch-database.ts";
import { type IdTokenIssuer, PROJECT_ID, startIdTokens, withServer } from "./server.ts";
import { wrk, type WrkResult } from "./wrk.ts";

const CONNECTIONS = 32;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 10);

interface Scenario {
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

const SCENARIOS: Scenario[] = [
  {
    name: "POST /users",
    method: "POST",
    fn: "users",
    sql: "SELECT * FROM dms.register_user('bench-user-' || :n, 'bench-' || :n || '@example.com', true);",
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

export function benchHttp(): Promise<void> {
  return withScratchDatabase("HTTP", run);
}

async function run(database: { url: string }): Promise<void> {
  console.log(`\nHTTP: ${CONNECTIONS} concurrent connections, ${SECONDS} s per endpoint; real RS256 ID tokens, one per connection, verified by the server`);
  const keys = await startIdTokens();
  const env = {
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: String(CONNECTIONS),
    ...keys.env,
    ENCRYPTION_KEY: generateKey(),
  };
  try {
    await withServer(env, async (origin) => {
      await measure(`${origin}/functions/v1`, database.url, keys);
      await benchColdVerification(keys);
    });
  } finally {
    await keys.close();
  }
}

async function measure(base: string, databaseUrl: string, keys: IdTokenIssuer): Promise<void> {
  const tokens = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => keys.idToken(`bench-user-${i + 1}`)));
  for (const token of tokens) await fetch(`${base}/users`, { method: "POST", headers: { authorization: `Bearer ${token}` } }).then((r) => r.body?.cancel());

  console.log(`  ${"endpoint".padEnd(22)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"errors".padStart(8)}${"pgbench tps".padStart(13)}${"ratio".padStart(8)}`);
  for (const scenario of SCENARIOS) {
    await load(base, scenario, tokens, 1); // warm-up
    const http = await load(base, scenario, tokens, SECONDS);
    if (http === null) {
      console.log("  skipped: the load generator wrk is not installed (apt-get install wrk)");
      break;
    }
    // pgbench runs the statement with one client per connection; each client works as user :n.
    const script = `\\set n random(1, ${CONNECTIONS})\n${scenario.sql.replaceAll("\n", " ")}\n`;
    const sqlTps = await pgbench(databaseUrl, script, { clients: CONNECTIONS, seconds: SECONDS });
    console.log(
      `  ${scenario.name.padEnd(22)}${http.rps.toFixed(0).padStart(9)}${http.p50.toFixed(1).padStart(9)}${
        http.p99.toFixed(1).padStart(9)
      }${String(http.errors).padStart(8)}${sqlTps === null ? "n/a".padStart(13) : sqlTps.toFixed(0).padStart(13)}${
        sqlTps === null ? "" : `${(http.rps / sqlTps).toFixed(2)}x`.padStart(8)
      }`,
    );
  }
}

// Requests cycle through the users' tokens.
function load(base: string, scenario: Scenario, tokens: string[], seconds: number): Promise<WrkResult | null> {
  const requests = tokens.map((token) => ({
    method: scenario.method,
    path: `/functions/v1/${scenario.fn}`,
    headers: { authorization: `Bearer ${token}`, ...(scenario.body ? { "content-type": "application/json" } : {}) },
    body: scenario.body,
  }));
  return wrk(new URL(base).origin, requests, { connections: CONNECTIONS, seconds });
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
