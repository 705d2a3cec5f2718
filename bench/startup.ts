// How long a person waits: `npm start` until ready (on a fresh and on an existing data directory),
// and the cold start of one function under Deno (process start to first answered request).
import { generateKey } from "../shared/crypto/fernet.ts";
import { freePort } from "../shared/local/ports.ts";
import { withScratchDatabase } from "./scratch-database.ts";

const REPO = new URL("..", import.meta.url).pathname;
const COLD_STARTS = 5;

export async function benchStartup(): Promise<void> {
  console.log("\nstart-up");
  const dataDir = await Deno.makeTempDir({ prefix: "dms-bench-start-" });
  try {
    for (const label of ["fresh data directory", "existing data directory"]) {
      const times = await timeNpmStart(`${dataDir}/pglite`);
      line(`npm start, ${label}`, `functions ${seconds(times.functions)}, whole stack ${seconds(times.ready)}`);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
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
  };
  const started = performance.now();
  const child = new Deno.Command("npm", {
    args: ["run", "-s", "start"],
    cwd: REPO,
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let output = "";
  let functions = NaN;
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  while (!/DMS backend ready/.test(output)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`npm start ended before it was ready:\n${output}`);
    output += value;
    if (Number.isNaN(functions) && /functions ready/.test(output)) functions = performance.now() - started;
  }
  const ready = performance.now() - started;
  child.kill("SIGTERM");
  await reader.cancel();
  await child.status;
  return { functions, ready };
}

async function coldStart(name: string, databaseUrl: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
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
  }).spawn();
  try {
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/${name}`);
        await response.body?.cancel();
        return performance.now() - started;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(48)}${value}`);
}
