// The tests run beside a developer's own stack (`npm start` on 54321, its database on 54322, its
// Auth emulator on 9099) without touching it, and clean up after themselves whatever happens: what
// a failed test left running is killed and the databases it forgot are dropped at the end of the run.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { generateKey } from "../shared/crypto/fernet.ts";
import { assertPortFree } from "../shared/local/ports.ts";
import { startTestBackend } from "./support/backend.ts";
import { dropRunDatabases, emptyPostgres, migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { ADMIN_URL } from "./support/postgres-urls.ts";
import { environmentOf, eventually, killRunProcesses, processesWithEnv, RUN_VARIABLE } from "./support/processes.ts";
import { cleanEnv, run } from "./support/run.ts";
import { startServe } from "./support/serve-process.ts";

const DEVELOPER_PORTS = [54321, 54322, 9099];
/** A run id of a test's own, so that cleaning it up cannot touch the databases and processes of this run. */
const otherRunId = () => `iso${randomBytes(4).toString("hex")}`;

/** A server holding 127.0.0.1:`port`, or null when someone (a developer's stack) holds it already. */
function occupy(port: number): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once("error", (error: NodeJS.ErrnoException) => (error.code === "EADDRINUSE" ? resolve(null) : reject(error)));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("beside a developer's running stack (54321, 54322 and 9099 taken)", () => {
  const held: Server[] = [];
  beforeAll(async () => {
    for (const port of DEVELOPER_PORTS) {
      const server = await occupy(port);
      if (server) held.push(server);
      await expect(assertPortFree("127.0.0.1", port, "a check", "PORT")).rejects.toThrow(/already in use/);
    }
  });
  afterAll(async () => {
    for (const server of held) await new Promise((resolve) => server.close(resolve));
  });

  it("a test backend answers", async () => {
    const backend = await startTestBackend();
    try {
      expect((await backend.call("health")).status).toBe(200);
    } finally {
      await backend.close();
    }
  });

  it("npm run serve started by startServe answers on a port of its own", async () => {
    const database = await migratedPostgres();
    try {
      const serve = await startServe({ DATABASE_URL: database.url, FIREBASE_PROJECT_ID: "demo-dms", ENCRYPTION_KEY: generateKey() });
      try {
        expect(DEVELOPER_PORTS).not.toContain(Number(new URL(serve.baseUrl).port));
        expect((await fetch(`${serve.baseUrl}/functions/v1/health`)).status).toBe(200);
      } finally {
        await serve.kill();
      }
    } finally {
      await database.drop();
    }
  });

  it("npm start started by startServe with nothing set takes free ports and a data directory of the run's", async () => {
    const stack = await startServe({}, { script: "start", readyWhen: /DMS backend ready in/ });
    try {
      const env = environmentOf(stack.child.pid!);
      const emulatorPort = Number(env.FIREBASE_AUTH_EMULATOR_HOST?.split(":")[1]);
      expect(DEVELOPER_PORTS).not.toContain(Number(new URL(stack.baseUrl).port));
      expect(DEVELOPER_PORTS).not.toContain(emulatorPort);
      expect(DEVELOPER_PORTS).not.toContain(Number(env.DMS_DB_PORT));
      // The emulator it waited for is on that port, and the embedded database is in that directory.
      expect((await fetch(`http://127.0.0.1:${emulatorPort}/`)).status).toBeLessThan(500);
      expect(stack.dataDir.startsWith(inject("testRunDir"))).toBe(true);
      expect(existsSync(join(stack.dataDir, "PG_VERSION"))).toBe(true);
      expect((await fetch(`${stack.baseUrl}/functions/v1/health`)).status).toBe(200);
      expect(env[RUN_VARIABLE]).toBe(inject("testRunId"));
    } finally {
      expect(await stack.stop()).toBe(0);
    }
  }, 120_000);
});

describe("a command a test runs", () => {
  it("gets none of a developer's settings, nor the repository's .env", async () => {
    const developer = {
      DATABASE_URL: "postgresql://developer@127.0.0.1:54322/postgres",
      PORT: "54321",
      FIREBASE_AUTH_EMULATOR_HOST: "127.0.0.1:9099",
      DMS_DATA_DIR: ".data/pglite",
      DMS_DB_PORT: "54322",
      ENCRYPTION_KEY: "developer-key",
    };
    for (const [name, value] of Object.entries(developer)) vi.stubEnv(name, value);
    try {
      const result = await run("env", ["-0"], {});
      const env = Object.fromEntries(result.stdout.split("\0").filter(Boolean).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
      for (const name of Object.keys(developer)) expect(env, name).not.toHaveProperty(name);
      // Pointed at a file that does not exist: no env file at all.
      expect(env.DMS_ENV_FILE).toBeDefined();
      expect(existsSync(env.DMS_ENV_FILE!)).toBe(false);
      expect(env[RUN_VARIABLE]).toBe(inject("testRunId"));
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe("the end of the run", () => {
  it("drops the databases a test made and forgot, and no other run's", async () => {
    const runId = otherRunId();
    const concurrent = otherRunId();
    const forgotten = [await emptyPostgres("template1", runId), await emptyPostgres("template1", runId)];
    const others: TestDatabase = await emptyPostgres("template1", concurrent);
    const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
    const existing = async () =>
      (await admin<{ datname: string }[]>`SELECT datname FROM pg_database WHERE datname LIKE ${"dms_test_iso%"}`)
        .map((row) => row.datname)
        .filter((name) => [...forgotten, others].some((database) => database.name === name))
        .sort();
    try {
      await forgotten[0]!.db.query("SELECT 1"); // still connected, as a forgotten test's pool is
      expect(await existing()).toEqual([...forgotten.map((database) => database.name), others.name].sort());

      expect((await dropRunDatabases(runId)).sort()).toEqual(forgotten.map((database) => database.name).sort());
      expect(await existing()).toEqual([others.name]);
    } finally {
      for (const database of forgotten) await database.db.close().catch(() => {});
      await others.drop();
      await admin.end();
    }
  });

  it("names this run's databases so that its end finds them", async () => {
    const database = await migratedPostgres();
    try {
      expect(database.name).toMatch(new RegExp(`^dms_test_${inject("testRunId")}_[0-9a-f]+$`));
    } finally {
      await database.drop();
    }
  });

  it("kills what a test started and never stopped, with what that started, and no other run's", async () => {
    const runId = otherRunId();
    const concurrent = otherRunId();
    const exited = (child: ChildProcess) => new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
    const lone = spawn("sleep", ["1000"], { env: cleanEnv({ [RUN_VARIABLE]: runId }), stdio: "ignore" });
    // As npm starts Deno, which starts the emulator: a tree, in a process group of its own.
    const tree = spawn("sh", ["-c", "sleep 1000 & sleep 1000 & wait"], { env: cleanEnv({ [RUN_VARIABLE]: runId }), stdio: "ignore", detached: true });
    const other = spawn("sleep", ["1000"], { env: cleanEnv({ [RUN_VARIABLE]: concurrent }), stdio: "ignore" });
    const loneExit = exited(lone);
    const treeExit = exited(tree);
    try {
      // lone, sh and its two sleeps, once each has started with its environment
      expect(await eventually(() => processesWithEnv(RUN_VARIABLE, runId).length === 4, 10_000)).toBe(true);
      expect(await eventually(() => processesWithEnv(RUN_VARIABLE, concurrent).length === 1, 10_000)).toBe(true);

      const killed = killRunProcesses(runId);
      expect(killed).toEqual(expect.arrayContaining([lone.pid, tree.pid]));
      expect(killed).toHaveLength(4);
      expect(await loneExit).toBe("SIGKILL");
      expect(await treeExit).toBe("SIGKILL");
      expect(await eventually(() => processesWithEnv(RUN_VARIABLE, runId).length === 0, 5_000)).toBe(true);
      expect(processesWithEnv(RUN_VARIABLE, concurrent).map((info) => info.pid)).toEqual([other.pid]);
    } finally {
      for (const child of [lone, other]) child.kill("SIGKILL");
      try {
        process.kill(-tree.pid!, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
  });
});
