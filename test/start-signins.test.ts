// Issue 11, point 1: the Auth emulator's accounts survive every ordinary way of stopping `npm start`,
// on a data directory given as a relative path (the default, `.data/pglite`, is one).
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { assertPortFree, freePort } from "../shared/local/ports.ts";
import { eventually, processesWithEnv } from "./support/processes.ts";
import { npmRun } from "./support/run.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";

const READY = /DMS backend ready in/;
// Two cold starts of the whole stack (the emulator alone takes seconds each), plus a clean stop.
const TEST_MS = 180_000;
const EMAIL = "x@example.com";

interface Stack {
  /** Relative to the repository, as the default `.data/pglite` is. */
  dataDir: string;
  env: Record<string, string>;
  port: number;
  emulatorHost: string;
}

const made: string[] = [];

// Inside the repository's git-ignored `.data`, under a name of its own: `npm start` runs in the
// repository, so this relative path means the same place to it as to us.
async function newStack(): Promise<Stack> {
  const dataDir = `.data/test-signins-${randomUUID()}`;
  made.push(dataDir);
  const emulatorHost = `127.0.0.1:${await freePort()}`;
  const env = {
    DMS_DATA_DIR: dataDir,
    FIREBASE_AUTH_EMULATOR_HOST: emulatorHost,
    // The embedded database's own port, where the stack has one: free, beside any other npm start.
    DMS_DB_PORT: String(await freePort()),
  };
  return { dataDir, env, port: await freePort(), emulatorHost };
}

/** Every process of the `npm start` given this data directory: npm, Deno, the emulator. */
const processesOf = (dataDir: string) => processesWithEnv("DMS_DATA_DIR", dataDir);

afterEach(async () => {
  for (const dataDir of made.splice(0)) {
    for (const { pid } of processesOf(dataDir)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    await rm(join(REPO_ROOT, dataDir), { recursive: true, force: true });
  }
});

const start = (stack: Stack) => startServe(stack.env, { script: "start", readyWhen: READY, port: stack.port });

/** An ID token from the stack's emulator, and the uid it names (its `sub`). */
async function signIn(stack: Stack): Promise<{ token: string; uid: string }> {
  const result = await npmRun("dev:token", [EMAIL], { FIREBASE_AUTH_EMULATOR_HOST: stack.emulatorHost });
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const token = result.stdout.trim();
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")) as { sub: string };
  return { token, uid: payload.sub };
}

async function users(server: ServeProcess, token: string, method: "GET" | "POST") {
  const response = await fetch(`${server.baseUrl}/functions/v1/users`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json() as { user?: { id: number; email: string } } };
}

/**
 * Signals the whole process group, as a terminal does on Ctrl-C, and waits until every process of
 * the stack is gone and the emulator's port is free again (bounded: a stop that hangs fails here).
 */
async function stopGroup(stack: Stack, server: ServeProcess, signal: "SIGINT" | "SIGTERM") {
  process.kill(-server.child.pid!, signal);
  await eventually(() => processesOf(stack.dataDir).length === 0, 30_000);
  expect(processesOf(stack.dataDir).map((p) => p.cmdline)).toEqual([]);
  const [host, port] = stack.emulatorHost.split(":");
  await expect(assertPortFree(host!, Number(port), "the emulator", "FIREBASE_AUTH_EMULATOR_HOST")).resolves.toBeUndefined();
}

/**
 * Signs up and registers (POST /users), stops the stack with `stop`, starts it again: the same
 * email signs in as the same Firebase user (the token's `sub`), whom GET /users finds.
 */
async function expectSignInsKept(stack: Stack, stop: (server: ServeProcess) => Promise<void>) {
  const first = await start(stack);
  let user: { id: number };
  let uid: string;
  try {
    const signedUp = await signIn(stack);
    uid = signedUp.uid;
    const created = await users(first, signedUp.token, "POST");
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    user = created.body.user!;
  } finally {
    await stop(first);
  }

  const second = await start(stack);
  try {
    const signedIn = await signIn(stack);
    expect(signedIn.uid).toBe(uid);
    const found = await users(second, signedIn.token, "GET");
    expect([found.status, found.body.user?.id]).toEqual([200, user.id]);
  } finally {
    expect(await second.stop()).toBe(0);
  }
}

describe("npm start keeps sign-ins on a relative data directory", () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`across a restart after ${signal} to the whole process group`, async () => {
      const stack = await newStack();
      await expectSignInsKept(stack, (server) => stopGroup(stack, server, signal));
    }, TEST_MS);
  }

  // Both of project demo-dms, as every npm start is unless told otherwise.
  it("across a restart while another npm start runs beside it", async () => {
    const other = await newStack();
    const beside = await start(other);
    try {
      const stack = await newStack();
      await expectSignInsKept(stack, async (server) => {
        expect(await server.stop()).toBe(0);
      });
    } finally {
      expect(await beside.stop()).toBe(0);
    }
  }, TEST_MS);
});
