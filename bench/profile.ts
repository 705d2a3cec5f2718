// Where the time of `npm run serve` goes under the HTTP bench's load (`npm run bench -- profile`,
// not part of a plain `npm run bench`): per scenario of bench/http.ts, our server and then the bare
// handler (bare-server.ts), each started for it under `deno run --cpu-prof`, 1 s of warm-up and
// BENCH_SECONDS (default 5) of wrk at 32 connections; then the samples of the measured seconds
// summarised by category (profile-summary.ts), per request, so the two can be set side by side. BENCH_PROFILE_DIR keeps the .cpuprofile files there (for Chrome's DevTools);
// else they go to a temporary directory, removed afterwards.
import { withCleanup } from "./interruptible.ts";
import { CONNECTIONS, httpEnv, registeredUsers, requestsOf, type Scenario, SCENARIOS } from "./http.ts";
import { type CpuProfile, formatSummary, type ProfileSummary, summariseProfile } from "./profile-summary.ts";
import { withScratchDatabase } from "./scratch-database.ts";
import { BARE_SERVER, type IdTokenIssuer, startIdTokens, withServer } from "./server.ts";
import { wrk, type WrkResult } from "./wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 5);
// The server stops within this of the load's end; the profile's last samples are its shutdown.
const STOP_MARGIN_MS = 200;

export function benchProfile(): Promise<void> {
  return withScratchDatabase("Profile", run);
}

async function run(database: { url: string }): Promise<void> {
  console.log(
    `\nProfile: npm run serve, then the bare handler (bare-server.ts), each under deno run --cpu-prof, ${CONNECTIONS} connections, ` +
      `${SECONDS} s of wrk per endpoint (after 1 s of warm-up); main-thread CPU by category`,
  );
  const keys = await startIdTokens();
  const keep = Deno.env.get("BENCH_PROFILE_DIR");
  const dir = keep ?? await Deno.makeTempDir({ prefix: "dms-bench-profile-" });
  const env = httpEnv(database.url, keys, CONNECTIONS);
  try {
    await withCleanup(async () => keep ? undefined : await Deno.remove(dir, { recursive: true }), async () => {
      // The users are registered through ours first: the bare handler's POST /users then finds them.
      await withServer(env, (base) => registeredUsers(base, keys).then(() => {}));
      for (const [i, scenario] of SCENARIOS.entries()) {
        for (const server of [{ name: "ours", script: undefined }, { name: "bare", script: BARE_SERVER }]) {
          const into = `${dir}/${i + 1}-${scenario.method}-${scenario.fn}-${server.name}`;
          const measured = await profiled(env, keys, scenario, into, server.script);
          console.log(
            `  ${scenario.name}, ${server.name}: ${measured.rps.toFixed(0)} req/s under the profiler${keep ? `; ${measured.file}` : ""}`,
          );
          for (const line of formatSummary(measured.summary, measured.requests)) console.log(`    ${line}`);
        }
      }
    });
  } finally {
    await keys.close();
  }
}

/** One server under the profiler for one scenario; its rate and the summary of the measured seconds. */
async function profiled(
  env: Record<string, string>,
  keys: IdTokenIssuer,
  scenario: Scenario,
  into: string,
  script: string | undefined,
): Promise<{ rps: number; requests: number; summary: ProfileSummary; file: string }> {
  let windowMs = 0;
  let result: WrkResult | null = null;
  await withServer(env, async (base) => {
    const requests = requestsOf(scenario, await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) => keys.idToken(`bench-user-${i + 1}`)),
    ));
    await wrk(base, requests, { connections: CONNECTIONS, seconds: 1 });
    const started = performance.now();
    result = await wrk(base, requests, { connections: CONNECTIONS, seconds: SECONDS });
    windowMs = performance.now() - started;
  }, { script, denoFlags: ["--cpu-prof", `--cpu-prof-dir=${into}`] });
  if (result === null) throw new Error("profile bench: the load generator wrk is not installed (apt-get install wrk)");
  const [entry] = [...Deno.readDirSync(into)].filter((entry) => entry.name.endsWith(".cpuprofile"));
  if (entry === undefined) throw new Error(`profile bench: the server left no .cpuprofile in ${into}`);
  const file = `${into}/${entry.name}`;
  const profile: CpuProfile = JSON.parse(await Deno.readTextFile(file));
  const { rps, requests } = result as WrkResult;
  return { rps, requests, summary: summariseProfile(profile, profile.endTime - (windowMs + STOP_MARGIN_MS) * 1000), file };
}
