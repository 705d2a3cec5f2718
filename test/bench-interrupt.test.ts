import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { ADMIN_URL, databaseUrl } from "./support/postgres-urls.ts";
import { childrenOf, environmentOf, eventually, processesWithEnv } from "./support/processes.ts";
import { cleanEnv } from "./support/run.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";

const DENO = join(REPO_ROOT, "node_modules/.bin/deno");

interface Bench {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code, or the signal's name when the signal itself ended it. */
  exited: Promise<number | string | null>;
}

/** `npm run bench -- <names>`, run as its Deno process itself, so that a signal reaches only it. */
function bench(names: string[]): Bench {
  const child = spawn(DENO, ["run", "-A", "--quiet", "bench/main.ts", ...names], {
    cwd: REPO_ROOT,
    env: cleanEnv({ BENCH_DATABASE_URL: ADMIN_URL }), // the tests' server
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | string | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  return { child, output: () => output, exited };
}

async function stopped(run: Bench, timeoutMs: number): Promise<number | string | null> {
  const timer = setTimeout(() => run.child.kill("SIGKILL"), timeoutMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

async function benchDatabases(): Promise<string[]> {
  const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`SELECT datname FROM pg_database WHERE datname LIKE 'dms\\_bench\\_%'`;
    return rows.map((row) => row.datname);
  } finally {
    await sql.end();
  }
}

/** Whether the rotation bench's rows are in its database (false while it is not ready for that). */
async function seeded(name: string): Promise<boolean> {
  const sql = postgres(databaseUrl(name), { max: 1, onnotice: () => {}, connect_timeout: 2 });
  try {
    const [row] = await sql<{ seeded: boolean }[]>`SELECT EXISTS (SELECT FROM public.dexcom_tokens) AS seeded`;
    return row?.seeded === true;
  } catch {
    return false; // no table yet, or the database is still being made
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Listens on each of `ports` that is free (one already taken is held by someone else: as good). */
async function holdPorts(ports: number[]): Promise<Server[]> {
  const held: Server[] = [];
  for (const port of ports) {
    const server = createServer();
    const listening = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (listening) held.push(server);
  }
  return held;
}

describe("npm run bench, interrupted", () => {
  // Early, while it creates and migrates its database; and in the middle of its work (the key
  // rotation over 100,000 rows, seeded in one transaction and then rotated for seconds).
  it.each([
    ["while it makes its database", async () => true],
    ["in the middle of its work", (name: string) => seeded(name)],
  ])("drops its scratch database on SIGINT (Ctrl-C) %s", async (_when, ready: (name: string) => Promise<boolean>) => {
    const before = new Set(await benchDatabases());
    const run = bench(["rotation"]);
    let created: string[] = [];
    try {
      const reached = await eventually(async () => {
        created = (await benchDatabases()).filter((name) => !before.has(name));
        return (created.length > 0 && await ready(created[0]!)) || run.child.exitCode !== null;
      }, 90_000);
      expect(reached && run.child.exitCode === null, run.output()).toBe(true);
      run.child.kill("SIGINT");
      expect(await stopped(run, 30_000), run.output()).toBe(130);
      expect((await benchDatabases()).filter((name) => created.includes(name))).toEqual([]);
    } finally {
      run.child.kill("SIGKILL");
      const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      for (const name of created) await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await sql.end();
    }
  }, 150_000);

  it("stops the npm start it runs, everything of it, and removes its data directory on SIGTERM", async () => {
    // As if a developer's npm start held the default ports: the bench's must take ports of its own.
    const held = await holdPorts([54321, 54322, 9099]);
    const run = bench(["startup"]);
    let dataDir: string | undefined;
    try {
      // Once npm start's whole tree is up: npm, its Deno process, and the emulator that one starts.
      const up = await eventually(() => {
        const npm = childrenOf(run.child.pid!).find((p) => p.cmdline.includes("npm run -s start"));
        dataDir ??= npm && environmentOf(npm.pid).DMS_DATA_DIR;
        return (dataDir !== undefined && processesWithEnv("DMS_DATA_DIR", dataDir).some((p) => p.cmdline.includes("firebase")))
          || run.child.exitCode !== null;
      }, 90_000);
      expect(up && run.child.exitCode === null, run.output()).toBe(true);
      run.child.kill("SIGTERM");
      expect(await stopped(run, 45_000), run.output()).toBe(143);
      expect(processesWithEnv("DMS_DATA_DIR", dataDir!).map((p) => p.cmdline)).toEqual([]);
      expect(existsSync(dirname(dataDir!))).toBe(false); // the bench's temporary directory
    } finally {
      await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
      run.child.kill("SIGKILL");
      for (const { pid } of dataDir ? processesWithEnv("DMS_DATA_DIR", dataDir) : []) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
    }
  }, 150_000);
});
