// `npm start -- --watch`: the functions reload on a change under functions/ or shared/, the
// database and the emulator stay up, and no request is lost or answered by code half loaded. It
// runs on a copy of the repository, since it edits source files that other tests import.
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../shared/local/ports.ts";
import { eventually, processesWithEnv } from "./support/processes.ts";
import { npmRun } from "./support/run.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";

const TEST_MS = 180_000;
const HEALTH_FILE = "shared/health/function.ts";
const HEALTHY = `{ status: "ok", database: "ok", schema_version: state.version }`;

let copy: string;
let emulatorHost: string;

beforeAll(async () => {
  copy = await mkdtemp(join(inject("testRunDir"), "watch-repo-"));
  for (const entry of ["package.json", "deno.json", "scripts", "shared", "functions", "supabase"]) {
    await cp(join(REPO_ROOT, entry), join(copy, entry), { recursive: true });
  }
  await symlink(join(REPO_ROOT, "node_modules"), join(copy, "node_modules"));
  emulatorHost = `127.0.0.1:${await freePort()}`;
});
afterAll(() => rm(copy, { recursive: true, force: true }));

const processesOf = (server: ServeProcess) => processesWithEnv("DMS_DATA_DIR", server.dataDir);
let running: ServeProcess | undefined;
// Whatever a failed test left running: the npm start and the functions processes it started.
afterEach(async () => {
  const child = running?.child;
  if (child && child.exitCode === null && child.signalCode === null) await running!.kill();
  for (const { pid } of running ? processesOf(running) : []) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  running = undefined;
});

function startWatching(): Promise<ServeProcess> {
  return startServe(
    { FIREBASE_AUTH_EMULATOR_HOST: emulatorHost },
    { script: "start", args: ["--watch"], cwd: copy, readyWhen: /DMS backend ready in/ },
  );
}

async function devToken(email: string): Promise<string> {
  const result = await npmRun("dev:token", [email], { FIREBASE_AUTH_EMULATOR_HOST: emulatorHost });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

/** Waits until `check` holds; fails the test if it does not within `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  expect(await eventually(check, timeoutMs), running?.output()).toBe(true);
}

/** Edits the copy's source as an editor saves it. */
async function edit(path: string, change: (text: string) => string): Promise<void> {
  const file = join(copy, path);
  await writeFile(file, change(await readFile(file, "utf8")));
}

/**
 * Requests without pause from `clients` loops until stopped: a health check (the database) and
 * the signed-in user (the emulator's token, the database); every answer's status, or the error.
 */
function keepAsking(server: ServeProcess, token: string, clients = 4) {
  const outcomes: string[] = [];
  let stopped = false;
  const loops = Array.from({ length: clients }, async (_, i) => {
    while (!stopped) {
      const [fn, init] = i % 2 === 0 ? ["health", {}] : ["users", { headers: { authorization: `Bearer ${token}` } }];
      try {
        const response = await fetch(`${server.baseUrl}/functions/v1/${fn}`, init);
        const body = await response.json();
        outcomes.push(`${fn} ${response.status}${body.edited ? " edited" : ""}`);
      } catch (error) {
        outcomes.push(`${fn} ${(error as Error).message}`);
      }
    }
  });
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** Every answer that is not a 200 (with the server's output, to see why). */
function failures(outcomes: string[], server: ServeProcess) {
  const bad = outcomes.filter((outcome) => !/^(health|users) 200( edited)?$/.test(outcome));
  return bad.length === 0 ? [] : [...bad.slice(0, 5), server.output()];
}

async function health(server: ServeProcess) {
  const response = await fetch(`${server.baseUrl}/functions/v1/health`);
  return { status: response.status, body: await response.json() };
}

async function signIn(server: ServeProcess, email: string): Promise<{ token: string; userId: number }> {
  const token = await devToken(email);
  const response = await fetch(`${server.baseUrl}/functions/v1/users`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(201);
  return { token, userId: (await response.json()).user.id };
}

describe("npm start -- --watch", () => {
  it("reloads the functions on a change, losing no request, with the database and the emulator kept", async () => {
    running = await startWatching();
    const server = running;
    expect(server.output()).toContain("watching functions/ and shared/");
    const { token, userId } = await signIn(server, "watch@example.com");
    expect((await health(server)).body.edited).toBeUndefined();

    const load = keepAsking(server, token);
    await until(() => load.outcomes.length > 20, 10_000);
    await edit(HEALTH_FILE, (text) => text.replace(HEALTHY, HEALTHY.replace(" }", ", edited: true }")));
    await until(() => /functions reloaded in [\d.]+ s \(shared\/health\/function\.ts\)/.test(server.output()), 60_000);
    expect(await health(server)).toMatchObject({ status: 200, body: { status: "ok", edited: true } });
    const before = load.outcomes.length;
    await until(() => load.outcomes.length > before + 20, 10_000);
    const outcomes = await load.stop();

    // Every request was answered well, by the old code or the new; once the new answered, the
    // old no more.
    expect(failures(outcomes, server)).toEqual([]);
    const healthChecks = outcomes.filter((outcome) => outcome.startsWith("health"));
    const firstEdited = healthChecks.findIndex((outcome) => outcome.endsWith("edited"));
    expect(firstEdited).toBeGreaterThan(0);
    expect(healthChecks.slice(firstEdited).every((outcome) => outcome.endsWith("edited"))).toBe(true);
    // One database and one emulator all along: the user signed in before is the same after.
    const after = await fetch(`${server.baseUrl}/functions/v1/users`, { headers: { authorization: `Bearer ${token}` } });
    expect((await after.json()).user.id).toBe(userId);
    expect(server.output().match(/Firebase Auth emulator ready/g)).toHaveLength(1);

    expect(await server.stop()).toBe(0);
    await until(() => processesOf(server).length === 0, 30_000);
  }, TEST_MS);

  it("keeps serving the code it has while a change does not load, and takes the fix", async () => {
    running = await startWatching();
    const server = running;
    const { token } = await signIn(server, "broken@example.com");
    const load = keepAsking(server, token, 2);

    await edit(HEALTH_FILE, (text) => `${text}\nexport const broken = ;\n`);
    await until(() => /functions not reloaded \(shared\/health\/function\.ts\), the previous code still serves/.test(server.output()), 60_000);
    expect(server.output()).toMatch(/SyntaxError|Expression expected/);
    expect((await health(server)).status).toBe(200);

    await edit(HEALTH_FILE, (text) => text.replace("\nexport const broken = ;\n", "\n"));
    await until(() => /functions reloaded in/.test(server.output()), 60_000);
    const outcomes = await load.stop();
    expect(outcomes.length).toBeGreaterThan(0);
    expect(failures(outcomes, server)).toEqual([]);

    // A functions process that dies is replaced without waiting for a change.
    const functionsProcesses = () => processesOf(server).filter((p) => p.cmdline.includes("scripts/serve.ts"));
    expect(functionsProcesses()).toHaveLength(1);
    const crashed = functionsProcesses()[0]!.pid;
    process.kill(crashed, "SIGKILL");
    await until(() => /the functions process ended on its own \(exit SIGKILL\); starting another/.test(server.output()), 10_000);
    await until(async () => (await health(server).catch(() => ({ status: 0 }))).status === 200, 60_000);
    expect(functionsProcesses().map((p) => p.pid)).not.toContain(crashed);

    // Killed hard, it takes its functions process with it.
    expect(functionsProcesses()).toHaveLength(1);
    await server.kill();
    await until(() => functionsProcesses().length === 0, 10_000);
  }, TEST_MS);
});
