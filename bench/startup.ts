// How long a person waits: `npm start` until ready (on a fresh and on an existing data directory),
// and the cold start of one function under Deno (process start to first answered request).
import { generateKey } from "../shared/crypto/fernet.ts";
import { freePort } from "../shared/local/ports.ts";
import { withChild } from "./child.ts";
import { withCleanup } from "./interruptible.ts";
import { withScratchDatabase } from "./scratch-database.ts";

const REPO = new URL("..", import.meta.url).pathname;
const COLD_STARTS = 5;
/** The longest `npm start` or one function may take to be ready before the bench gives up. */
const READY_TIMEOUT_MS = 120_000;
/** Stopped while starting, npm start first finishes opening its database, then stops cleanly. */
const NPM_START_STOP_GRACE_MS = 60_000;

export async function benchStartup(): Promise<void> {
  console.log("\nstart-up");
  const dataDir = await Deno.makeTempDir({ prefix: "dms-bench-start-" });
  await withCleanup(() => Deno.remove(dataDir, { recursive: true }), async () => {
    for (const label of ["fresh data directory", "existing data directory"]) {
      const times = await timeNpmStart(`${dataDir}/pglite`);
      line(`npm start, ${label}`, `functions ${seconds(times.functions)}, whole stack ${seconds(times.ready)}`);
    }
  });
  await withScratchDatabase("cold start", async ({ url }) => {
    for (const name of ["health", "users"]) {
      const times: number[] = [];
      for (let run = 0; run < COLD_STARTS; run++) times.push(await coldStart(name, url));
      times.sort((a, b) => a - b);
      line(`cold start of functions/${name} (median of ${COLD_STARTS})`, `${Math.round(times[Math.floor(COLD_STARTS / 2)]!)} ms`);
    }
  });
}

async function timeNpmStart(dataDir: string): Promise<{ functions: number; ready: number }> {
  const env = {
    DMS_DATA_DIR: dataDir,
    PORT: String(await freePort()),
    FIREBASE_AUTH_EMULATOR_HOST: `127.0.0.1:${await freePort()}`,
    DMS_DB_PORT: String(await freePort()), // where npm start serves its database: a developer's may hold 54322
  };
  const started = performance.now();
  const npmStart = new Deno.Command("npm", {
    args: ["run", "-s", "start"],
    cwd: REPO,
    env,
    stdout: "null",
    stderr: "piped",
  });
  let reader: ReadableStreamDefaultReader<string> | undefined;
  try {
    // Stopped (SIGTERM, which npm passes on) once ready, or on any failure or interruption; given
    // the time to finish starting, then to stop cleanly: its data directory is removed next.
    return await withChild(npmStart, async (child) => {
      reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let output = "";
      let functions = NaN;
      while (!/DMS backend ready/.test(output)) {
        const { value, done } = await withDeadline(reader.read(), started + READY_TIMEOUT_MS, "npm start was not ready");
        if (done) throw new Error(`npm start ended before it was ready:\n${output}`);
        output += value;
        if (Number.isNaN(functions) && /functions ready/.test(output)) functions = performance.now() - started;
      }
      return { functions, ready: performance.now() - started };
    }, NPM_START_STOP_GRACE_MS);
  } finally {
    await reader?.cancel(); // only once it is gone: it writes to stderr while it stops
  }
}

async function coldStart(name: string, databaseUrl: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const fn = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `functions/${name}/index.ts`],
    cwd: REPO,
    env: {
      DATABASE_URL: databaseUrl,
      FIREBASE_PROJECT_ID: "dms-bench",
      ENCRYPTION_KEY: generateKey(),
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
    },
    stdout: "null",
    stderr: "null",
  });
  return await withChild(fn, async () => {
    while (performance.now() - started < READY_TIMEOUT_MS) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/${name}`);
        await response.body?.cancel();
        return performance.now() - started;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
    throw new Error(`functions/${name} did not answer within ${READY_TIMEOUT_MS / 1000} s`);
  });
}

function withDeadline<T>(promise: Promise<T>, at: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${READY_TIMEOUT_MS / 1000} s`)), at - performance.now());
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(48)}${value}`);
}
