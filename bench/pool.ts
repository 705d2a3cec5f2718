// DATABASE_POOL_SIZE under the HTTP bench's load (`npm run bench -- pool`): the scenarios of
// bench/http.ts at 32 concurrent connections against `npm run serve` with pools of 5, 10, 20 and 32
// connections, in ROUNDS rounds, each round taking the sizes in another order (a server of its own
// per size and round, 1 s of warm-up, then BENCH_SECONDS, default 3, per scenario), so that a busy
// moment of the machine falls on different sizes; per size the median rate and the range. Then the
// same through PgBouncer in transaction mode, the way Supabase's pooler is reached, when pgbouncer
// is installed.
import { outputOf, withChild } from "./child.ts";
import { CONNECTIONS, httpEnv, registeredUsers, requestsOf, SCENARIOS } from "./http.ts";
import { wrk } from "./wrk.ts";
import { withScratchDatabase } from "./scratch-database.ts";
import { type IdTokenIssuer, startIdTokens, withServer } from "./server.ts";
import { freePort } from "../shared/local/ports.ts";

const SIZES = [5, 10, 20, 32];
const ROUNDS = 3;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 3);

type Rates = Map<string, Map<number, { rps: number; p99: number }[]>>;

export function benchPool(): Promise<void> {
  return withScratchDatabase("Pool size", run);
}

async function run(database: { url: string }): Promise<void> {
  console.log(
    `\nDATABASE_POOL_SIZE: the HTTP scenarios at ${CONNECTIONS} concurrent connections, pools of ${SIZES.join(", ")}; ` +
      `${ROUNDS} rounds, each size in another order, a server of its own per size and round, ${SECONDS} s per scenario`,
  );
  const keys = await startIdTokens();
  try {
    await withServer(httpEnv(database.url, keys, 10), (base) => registeredUsers(base, keys).then(() => {}));
    const direct = await measure(database.url, keys);
    if (direct === null) {
      console.log("  skipped: the load generator wrk is not installed (apt-get install wrk)");
      return;
    }
    print("straight to Postgres", direct);
    await throughPgBouncer(database.url, keys);
  } finally {
    await keys.close();
  }
}

async function measure(databaseUrl: string, keys: IdTokenIssuer): Promise<Rates | null> {
  const rates: Rates = new Map(SCENARIOS.map((scenario) => [scenario.name, new Map(SIZES.map((size) => [size, []]))]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = SIZES.map((_, i) => SIZES[(i + round) % SIZES.length]!);
    if (round % 2 === 1) order.reverse();
    for (const size of order) {
      let missing = false;
      await withServer(httpEnv(databaseUrl, keys, size), async (base) => {
        const tokens = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => keys.idToken(`bench-user-${i + 1}`)));
        for (const scenario of SCENARIOS) {
          const requests = requestsOf(scenario, tokens);
          await wrk(base, requests, { connections: CONNECTIONS, seconds: 1 }); // warm-up
          const result = await wrk(base, requests, { connections: CONNECTIONS, seconds: SECONDS });
          if (result === null) return void (missing = true);
          if (result.errors > 0) throw new Error(`pool bench: ${scenario.name} with a pool of ${size} answered ${result.errors} errors`);
          rates.get(scenario.name)!.get(size)!.push({ rps: result.rps, p99: result.p99 });
        }
      });
      if (missing) return null;
    }
  }
  return rates;
}

function print(label: string, rates: Rates): void {
  console.log(`  ${label}: per size the median of ${ROUNDS} rounds, and each round against pool 10 in the same round`);
  console.log(
    `  ${"endpoint".padEnd(22)}${"pool".padStart(5)}${"req/s".padStart(8)}${"lowest-highest".padStart(16)}${"p99 ms".padStart(8)}` +
      `${"vs pool 10".padStart(12)}${"lowest-highest".padStart(16)}`,
  );
  const all = new Map<number, number[]>(SIZES.map((size) => [size, []]));
  for (const [name, bySize] of rates) {
    const base = bySize.get(10)!;
    for (const size of SIZES) {
      const runs = bySize.get(size)!;
      const rps = runs.map((run) => run.rps).sort((a, b) => a - b);
      const p99 = runs.map((run) => run.p99).sort((a, b) => a - b);
      const ratios = runs.map((run, i) => run.rps / base[i]!.rps).sort((a, b) => a - b);
      all.get(size)!.push(...ratios);
      console.log(
        `  ${name.padEnd(22)}${String(size).padStart(5)}${median(rps).toFixed(0).padStart(8)}${`${rps[0]!.toFixed(0)}-${rps.at(-1)!.toFixed(0)}`.padStart(16)}` +
          `${median(p99).toFixed(0).padStart(8)}${`${median(ratios).toFixed(2)}x`.padStart(12)}` +
          `${`${ratios[0]!.toFixed(2)}-${ratios.at(-1)!.toFixed(2)}`.padStart(16)}`,
      );
    }
  }
  const overall = SIZES.filter((size) => size !== 10).map((size) => {
    const ratios = all.get(size)!.sort((a, b) => a - b);
    return `pool ${size} ${median(ratios).toFixed(2)}x (${ratios[0]!.toFixed(2)}-${ratios.at(-1)!.toFixed(2)})`;
  });
  console.log(`  against pool 10, all scenarios and rounds: ${overall.join(", ")}`);
}

function median(sorted: number[]): number {
  return sorted[Math.floor(sorted.length / 2)]!;
}

// Supabase's pooler (Supavisor) in transaction mode hands each transaction a server connection of
// its pool; PgBouncer in transaction mode does the same, so the server's own pool then only bounds
// its client connections to the pooler. Its server side here: 10 connections (a default_pool_size
// of Supabase's smaller plans).
async function throughPgBouncer(databaseUrl: string, keys: IdTokenIssuer): Promise<void> {
  const found = await outputOf(new Deno.Command("sh", { args: ["-c", "command -v pgbouncer"], stdout: "piped", stderr: "null" }))
    .catch(() => null);
  const binary = found?.success ? new TextDecoder().decode(found.stdout).trim() : "";
  if (binary === "") {
    console.log("  through a pooler: skipped, pgbouncer is not installed (Debian's package pgbouncer)");
    return;
  }
  const target = new URL(databaseUrl);
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "dms-bench-pgbouncer-" });
  const config = `[databases]
${target.pathname.slice(1)} = host=${target.hostname} port=${target.port || 5432} dbname=${target.pathname.slice(1)}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${dir}/users.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 500
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
`;
  await Deno.writeTextFile(`${dir}/users.txt`, `"${decodeURIComponent(target.username || "postgres")}" ""\n`);
  // PgBouncer refuses to run as root; as root (a CI machine), it runs as the postgres user, which
  // must then read its files and write its log in the directory.
  const asRoot = Deno.uid() === 0;
  if (asRoot) await Deno.chmod(dir, 0o777);
  try {
    const path = `${dir}/pgbouncer.ini`;
    await Deno.writeTextFile(path, config, { mode: 0o644 });
    const pgbouncer = new Deno.Command(binary, { args: [...(asRoot ? ["-u", "postgres"] : []), path], stdout: "null", stderr: "null" });
    await withChild(pgbouncer, async () => {
      const pooled = new URL(databaseUrl);
      pooled.port = String(port);
      await untilListening(port);
      const rates = await measure(pooled.toString(), keys);
      if (rates !== null) print("through PgBouncer (transaction mode, 10 server connections)", rates);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves once something accepts TCP connections on the local port; fails after 5 s. */
async function untilListening(port: number): Promise<void> {
  for (const started = performance.now(); performance.now() - started < 5000;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`pool bench: pgbouncer did not listen on port ${port} within 5 s`);
}
