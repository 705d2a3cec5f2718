import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readMigrations } from "../shared/db/migrations.ts";
import { openPglite } from "../shared/db/pglite.ts";
import { assertPortFree, freePort } from "../shared/local/ports.ts";
import { emptyPostgres, migratedPglite } from "./support/databases.ts";
import { closedPort, hangingUpServer, silentServer } from "./support/fake-postgres.ts";
import { childrenOf, eventually, processesWithEnv } from "./support/processes.ts";
import { cleanEnv, npmRun, run, type RunResult } from "./support/run.ts";
import { schemaSnapshot } from "./support/schema-snapshot.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";
import { startTcpProxy } from "./support/tcp-proxy.ts";
import { ADMIN_URL } from "./support/postgres-urls.ts";
import { REPO_ROOT, supabase } from "./support/supabase-cli.ts";

const READY = /DMS backend ready in/;
let dataRoot: string;
let emulatorHost: string;

beforeAll(async () => {
  dataRoot = await mkdtemp(join(tmpdir(), "dms-start-"));
  // Its own emulator port, so a developer's running `npm start` is never in the way.
  emulatorHost = `127.0.0.1:${await freePort()}`;
});
afterAll(() => rm(dataRoot, { recursive: true, force: true }));

function start(dataDir: string, extra: Record<string, string> = {}): Promise<ServeProcess> {
  return startServe({ DMS_DATA_DIR: dataDir, FIREBASE_AUTH_EMULATOR_HOST: emulatorHost, ...extra }, { script: "start", readyWhen: READY });
}

/**
 * `npm run -s start` in a process group of its own, to its end: killed (the whole group) if it
 * runs longer than `timeoutMs`, so that a start that hangs cannot outlive its test.
 */
function startToTheEnd(env: Record<string, string>, timeoutMs: number): Promise<RunResult & { ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("npm", ["run", "-s", "start"], { cwd: REPO_ROOT, env: cleanEnv(env), detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => killGroup(child), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

function killGroup(child: ChildProcess) {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // gone already
  }
}

// A first npm start compiles and starts everything cold (Deno, PGlite, the Auth emulator): on a
// machine busy with other suites that takes far longer than the default 30 s.
const START_TEST_MS = 120_000;

/** Every process of the `npm start` given this data directory: npm, Deno, the emulator. */
const processesOf = (dataDir: string) => processesWithEnv("DMS_DATA_DIR", dataDir);

// Bounded: the emulator's clean shutdown (exporting its accounts) takes a second or two.
async function expectNothingLeft(dataDir: string, emulator = emulatorHost) {
  await eventually(() => processesOf(dataDir).length === 0, 30_000);
  expect(processesOf(dataDir).map((p) => p.cmdline)).toEqual([]);
  const [host, port] = emulator.split(":");
  await expect(assertPortFree(host!, Number(port), "the emulator", "FIREBASE_AUTH_EMULATOR_HOST")).resolves.toBeUndefined();
}

// Whatever a failed run left, by pid: only processes of our own data directory.
function killLeftovers(dataDir: string) {
  for (const { pid } of processesOf(dataDir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

/** The Deno process of an `npm start` (npm's child). */
function denoOf(server: ServeProcess): number {
  const deno = childrenOf(server.child.pid!).filter((p) => p.cmdline.includes("scripts/start.ts"));
  expect(deno).toHaveLength(1);
  return deno[0]!.pid;
}

async function devToken(email: string, emulator = emulatorHost): Promise<string> {
  const result = await npmRun("dev:token", [email], { FIREBASE_AUTH_EMULATOR_HOST: emulator });
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return result.stdout.trim();
}

async function call(server: ServeProcess, fn: string, token: string | null, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  if (init.body) headers.set("content-type", "application/json");
  const response = await fetch(`${server.baseUrl}/functions/v1/${fn}`, { ...init, headers });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

describe("npm start", () => {
  let dataDir: string;
  let stored: { userId: number; tokenId: number };

  beforeAll(() => {
    dataDir = join(dataRoot, "pglite");
  });
  // A test that ran out of time may leave its npm start running: the next one must not find the
  // data directory taken.
  afterEach(() => killLeftovers(dataDir));

  it("serves every function on a fresh embedded database, with sign-in from the emulator, and the database to psql", async () => {
    const dbPort = await freePort();
    const server = await start(dataDir, { DMS_DB_PORT: String(dbPort) });
    try {
      expect(server.output()).toContain("ENCRYPTION_KEY is not set: using the development key");
      // Its emulator is not at the default address: the hint says where, so it works as printed.
      expect(server.output()).toContain(`get an ID token: FIREBASE_AUTH_EMULATOR_HOST=${emulatorHost} npm run dev:token -- you@example.com`);
      const health = await call(server, "health", null);
      expect(health.status).toBe(200);
      expect(health.body.schema_version).toBe((await readMigrations()).at(-1)!.version);

      const token = await devToken("person@example.com");
      const user = await call(server, "users", token, { method: "POST" });
      expect(user.status).toBe(201);
      expect(user.body.user.email).toBe("person@example.com");
      const stored_ = await call(server, "dexcom-tokens", token, {
        method: "POST",
        body: JSON.stringify({ access_token: "local-access", refresh_token: "local-refresh", expires_in: 3600 }),
      });
      expect(stored_.status).toBe(201);
      stored = { userId: user.body.user.id, tokenId: stored_.body.token.id };

      // The embedded database is open to Postgres clients while the stack runs: psql reads the
      // row the API wrote, and the Supabase CLI finds every migration applied.
      const url = `postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`;
      expect(server.output()).toContain(`database open to Postgres clients (psql, pg_dump, supabase --db-url) at ${url}`);
      const row = await run("psql", [url, "-X", "-At", "-c", `SELECT email FROM users WHERE id = ${Number(user.body.user.id)}`], {});
      expect(row).toEqual({ code: 0, stdout: "person@example.com\n", stderr: "" });
      // The CLI asks for TLS on any port but 54322, the one it knows as local: ours has none.
      const listed = await supabase("migration", "list", "--db-url", `${url}?sslmode=disable`);
      expect(listed.code, listed.output).toBe(0);
      const applied = [...listed.output.matchAll(/`(\d{14})`\s*\|\s*`(\d{14})`/g)].map((m) => [m[1], m[2]]);
      const versions = (await readMigrations()).map((m) => m.version);
      expect(applied).toEqual(versions.map((v) => [v, v]));

      // Two processes on one PGlite directory would corrupt it: other commands are refused.
      const check = await npmRun("db:check", [], { DMS_DATA_DIR: dataDir });
      expect(check.code).toBe(1);
      expect(check.stderr).toMatch(/^db:check failed: the embedded database in .* is in use by process \d+/);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, START_TEST_MS);

  it("keeps users, tokens, sign-ins and the development key across a restart", async () => {
    const server = await start(dataDir);
    try {
      expect(server.output()).not.toContain("just created");
      const token = await devToken("person@example.com");
      const user = await call(server, "users", token);
      expect([user.status, user.body.user.id]).toEqual([200, stored.userId]);
      const status = await call(server, "dexcom-tokens", token);
      expect(status.body).toMatchObject({ connected: true, token: { id: stored.tokenId } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, START_TEST_MS);

  // Starts the whole stack twice (the emulator alone takes about 6 s each): more time than most.
  it("loses no acknowledged write when killed hard in the middle of writes", async () => {
    const server = await start(dataDir);
    const acknowledged: number[] = [];
    let writing = true;
    let token: string;
    try {
      token = await devToken("person@example.com");
      // Registered here too (200 when it already is), so that this test also runs on its own.
      expect([200, 201]).toContain((await call(server, "users", token, { method: "POST" })).status);
      const writer = (async () => {
        while (writing) {
          try {
            const response = await call(server, "dexcom-tokens", token, {
              method: "POST",
              body: JSON.stringify({ access_token: `a${acknowledged.length}`, refresh_token: "r", expires_in: 60 }),
            });
            if (response.status === 201) acknowledged.push(response.body.token.id);
          } catch {
            return; // the server is gone
          }
        }
      })();
      const deadline = Date.now() + 30_000;
      while (acknowledged.length < 25 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      await server.kill();
      writing = false;
      await writer;
    } finally {
      writing = false;
      if (server.child.exitCode === null && server.child.signalCode === null) await server.kill();
    }
    expect(acknowledged.length).toBeGreaterThanOrEqual(25);

    const again = await start(dataDir);
    try {
      const status = await call(again, "dexcom-tokens", token);
      expect(status.status).toBe(200);
      expect(status.body.connected).toBe(true);
    } finally {
      expect(await again.stop()).toBe(0);
    }
    const db = await openPglite(dataDir);
    try {
      const rows = await db.query<{ id: number }>("SELECT id FROM dexcom_tokens WHERE id = ANY($1::int[])", [acknowledged]);
      expect(rows.map((row) => row.id).sort((a, b) => a - b)).toEqual(acknowledged);
      const [active] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM dexcom_tokens WHERE is_revoked IS NOT TRUE");
      expect(active!.n).toBe(1);
    } finally {
      await db.close();
    }
  }, 90_000);
});

describe("npm start killed hard", () => {
  it("leaves nothing running when its Deno process gets SIGKILL; the next start works, sign-ins kept", async () => {
    const dataDir = join(dataRoot, "deno-killed");
    let second: ServeProcess | undefined;
    try {
      const first = await start(dataDir);
      const token = await devToken("killed@example.com");
      const created = await call(first, "users", token, { method: "POST" });
      expect(created.status).toBe(201);
      process.kill(denoOf(first), "SIGKILL");

      await expectNothingLeft(dataDir);
      second = await start(dataDir);
      // The emulator exported its accounts on the way out: the same Firebase user signs in again.
      const again = await call(second, "users", await devToken("killed@example.com"));
      expect([again.status, again.body.user.id]).toEqual([200, created.body.user.id]);
    } finally {
      if (second) expect(await second.stop()).toBe(0);
      killLeftovers(dataDir);
    }
  }, 150_000);

  it("stops, with everything it started, when npm gets SIGKILL", async () => {
    const dataDir = join(dataRoot, "npm-killed");
    try {
      const server = await start(dataDir);
      process.kill(server.child.pid!, "SIGKILL");
      await expectNothingLeft(dataDir);
    } finally {
      killLeftovers(dataDir);
    }
  }, 120_000);
});

describe("npm start on a DATABASE_URL", () => {
  it("gives a plain Postgres what Supabase would have, migrates it and serves", async () => {
    const database = await emptyPostgres();
    const server = await start(join(dataRoot, "plain-postgres"), { DATABASE_URL: database.url });
    try {
      const health = await call(server, "health", null);
      expect([health.status, health.body.schema_version]).toEqual([200, (await readMigrations()).at(-1)!.version]);
      const created = await call(server, "users", await devToken("plain@example.com"), { method: "POST" });
      expect(created.status).toBe(201);
      const [row] = await database.db.query<{ email: string; auth: boolean }>(
        "SELECT email, to_regnamespace('auth') IS NOT NULL AS auth FROM users",
      );
      expect(row).toEqual({ email: "plain@example.com", auth: true });
    } finally {
      expect(await server.stop()).toBe(0);
      await database.drop();
    }
  });
});

describe("npm start on a DATABASE_URL that stops answering", () => {
  it("answers 503 within 5 s, as deployed functions do, and serves again once it answers", async () => {
    const database = await emptyPostgres();
    const proxy = await startTcpProxy(Number(new URL(ADMIN_URL).port || 5432));
    const proxied = Object.assign(new URL(database.url), { port: String(proxy.port) }).toString();
    const server = await start(join(dataRoot, "frozen-postgres"), { DATABASE_URL: proxied, DATABASE_POOL_SIZE: "1" });
    try {
      expect((await call(server, "health", null)).status).toBe(200);
      proxy.freeze();
      const started = performance.now();
      const health = await call(server, "health", null);
      expect(health.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(5_000); // the contract's bound, not a speed measurement
      proxy.thaw();
      expect(await eventually(async () => (await call(server, "health", null)).status === 200, 10_000)).toBe(true);
    } finally {
      proxy.thaw();
      expect(await server.stop()).toBe(0);
      await proxy.close();
      await database.drop();
    }
  }, 120_000);
});

describe("npm start refuses, in one line", () => {
  async function refusal(env: Record<string, string>, port?: number) {
    const dataDir = env.DMS_DATA_DIR ?? join(dataRoot, `refusal-${Math.random().toString(36).slice(2)}`);
    const result = await startToTheEnd({
      DMS_DATA_DIR: dataDir,
      FIREBASE_AUTH_EMULATOR_HOST: emulatorHost,
      PORT: String(port ?? await freePort()),
      DMS_DB_PORT: String(await freePort()),
      ...env,
    }, 60_000);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n").filter((line) => line.startsWith("npm start:"));
    expect(lines, result.stderr).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\bat .*:\d+:\d+/);
    return lines[0]!;
  }

  it("a port already in use", async () => {
    const busy: Server = createServer();
    const port = await new Promise<number>((resolve) =>
      busy.listen(0, "127.0.0.1", () => resolve((busy.address() as { port: number }).port))
    );
    try {
      expect(await refusal({}, port)).toMatch(new RegExp(`127.0.0.1:${port} is already in use.*PORT`));
    } finally {
      busy.close();
    }
  });

  it("a database port already in use, before starting anything", async () => {
    const busy: Server = createServer();
    const port = await new Promise<number>((resolve) =>
      busy.listen(0, "127.0.0.1", () => resolve((busy.address() as { port: number }).port))
    );
    try {
      const line = await refusal({ DMS_DB_PORT: String(port) });
      expect(line).toBe(
        `npm start: 127.0.0.1:${port} is already in use, so the embedded database's server cannot start (another npm start or supabase start?); set DMS_DB_PORT to use another port`,
      );
    } finally {
      busy.close();
    }
    await expectNothingLeft(join(dataRoot, "none"));
  });

  it("a database port that is not a port", async () => {
    expect(await refusal({ DMS_DB_PORT: "5432x" })).toBe("npm start: DMS_DB_PORT is not a port number");
  });

  it("a data directory that cannot be written", async () => {
    const file = join(dataRoot, "a-file");
    await writeFile(file, "");
    expect(await refusal({ DMS_DATA_DIR: join(file, "pglite") })).toMatch(/is not writable/);
  });

  it("a database migrated by newer code", async () => {
    const dataDir = join(dataRoot, "from-the-future");
    const db = await migratedPglite(dataDir);
    await db.query("INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('29990101000000', 'future')");
    await db.close();
    expect(await refusal({ DMS_DATA_DIR: dataDir })).toMatch(/29990101000000.*does not know/);
  });

  it("a database the migrations cannot apply to, which it leaves as it was", async () => {
    const database = await emptyPostgres();
    try {
      await database.db.exec("CREATE TABLE public.users (id integer)");
      const before = await schemaSnapshot(database.db);
      expect(await refusal({ DATABASE_URL: database.url })).toMatch(/database error at .*: relation "users" already exists/);
      // No auth or extensions schema, history table, grant or default privilege of ours left in it.
      expect(await schemaSnapshot(database.db)).toEqual(before);
    } finally {
      await database.drop();
    }
  });

  it("a DATABASE_URL that cannot be reached", async () => {
    const port = await closedPort();
    expect(await refusal({ DATABASE_URL: `postgresql://postgres:secret@127.0.0.1:${port}/dms` }))
      .toMatch(/connection refused/);
  });

  // Not after the 120 s the migrations may take: the connection is proved first, within 5 s.
  it("a DATABASE_URL whose server takes each connection and hangs up at once, within seconds", async () => {
    const server = await hangingUpServer();
    try {
      const started = performance.now();
      expect(await refusal({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/dms` }))
        .toMatch(/^npm start: .*postgresql:\/\/postgres@127\.0\.0\.1:\d+\/dms: .*(timed out|closed the connection|did not answer within 5)/);
      expect(performance.now() - started).toBeLessThan(15_000); // 5 s, and npm and Deno starting
      expect(server.connections()).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  }, 90_000);
});

describe("npm start signalled while starting", () => {
  // A `supabase db push` (or any session) holding the history table: the migrations wait for it.
  // The signal comes while the emulator is starting too, when it handles no signal for seconds.
  it("stops within seconds while its migrations wait on a lock, leaving nothing running and the database as it was", async () => {
    const database = await emptyPostgres();
    const dataDir = join(dataRoot, "signalled-while-migrating");
    let child: ChildProcess | undefined;
    let release: (() => void) | undefined;
    let holder: Promise<void> | undefined;
    try {
      await database.db.exec(`CREATE SCHEMA supabase_migrations;
        CREATE TABLE supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY, statements text[], name text)`);
      const before = await schemaSnapshot(database.db);
      const locked = new Promise<void>((resolve) => {
        holder = database.db.transaction(async (tx) => {
          await tx.query("LOCK TABLE supabase_migrations.schema_migrations");
          resolve();
          await new Promise<void>((done) => (release = done));
        });
      });
      await locked;

      child = spawn("npm", ["run", "-s", "start"], {
        cwd: REPO_ROOT,
        env: cleanEnv({ DATABASE_URL: database.url, DMS_DATA_DIR: dataDir, FIREBASE_AUTH_EMULATOR_HOST: emulatorHost, PORT: String(await freePort()) }),
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let output = "";
      child.stdout!.on("data", (chunk) => (output += chunk));
      child.stderr!.on("data", (chunk) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
      const waitingOnLocks = async () =>
        (await database.db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ))[0]!.n;
      expect(await eventually(async () => (await waitingOnLocks()) === 1, 30_000), output).toBe(true);
      // The Firebase CLI has been starting for a while, and is not ready: seconds of loading and
      // building its emulator, during which it acts on no signal, its own Ctrl-C included.
      const emulatorRuns = () => processesOf(dataDir).some((p) => p.cmdline.includes("firebase.js emulators:start"));
      expect(await eventually(emulatorRuns, 30_000), output).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const answers = await fetch(`http://${emulatorHost}/`, { signal: AbortSignal.timeout(500) }).then(() => true, () => false);
      expect(answers, "the emulator was ready before the signal: nothing of its start left to cut short").toBe(false);

      const signalled = performance.now();
      process.kill(-child.pid!, "SIGINT"); // Ctrl-C: the terminal signals the whole process group
      const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve("still running after 15 s"), 15_000))]);
      const took = performance.now() - signalled;
      expect(code, output).toBe(0);
      expect(took, output).toBeLessThan(4_000);
      expect(output).not.toMatch(/\bat .*:\d+:\d+/);
      await expectNothingLeft(dataDir);
      // Its transaction is not left queued on the server behind the lock either: it is gone.
      expect(await eventually(async () => (await waitingOnLocks()) === 0, 5_000)).toBe(true);

      release!();
      await holder;
      expect(await schemaSnapshot(database.db)).toEqual(before);
      expect(await database.db.query("SELECT version FROM supabase_migrations.schema_migrations")).toEqual([]);
    } finally {
      release?.();
      await holder?.catch(() => {});
      if (child) killGroup(child);
      killLeftovers(dataDir);
      await database.drop();
    }
  }, 90_000);
});

describe("npm start on a data directory another npm start holds", () => {
  // The second must touch nothing of the first's: not its emulator's configuration, not its ports.
  it.each([
    ["on the embedded database", false],
    ["on a DATABASE_URL (the emulator's accounts are in the data directory too)", true],
  ])("is refused in one line naming the holder, %s, before it starts anything", async (_name, onServer) => {
    const dataDir = join(dataRoot, `held-by-another-start-${onServer}`);
    const database = onServer ? await emptyPostgres() : undefined;
    const first = await start(dataDir);
    try {
      const config = await readFile(join(dataDir, "dms-firebase-cli", "firebase.json"), "utf8");
      const otherEmulator = `127.0.0.1:${await freePort()}`;
      const second = await startToTheEnd({
        DMS_DATA_DIR: dataDir,
        FIREBASE_AUTH_EMULATOR_HOST: otherEmulator,
        PORT: String(await freePort()),
        ...(database ? { DATABASE_URL: database.url } : {}),
      }, 60_000);
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr.trim().split("\n"), second.stderr).toHaveLength(1);
      expect(second.stderr.trim()).toMatch(new RegExp(`^npm start: .*${dataDir}.* in use by process ${denoOf(first)}\\b`));
      expect(await readFile(join(dataDir, "dms-firebase-cli", "firebase.json"), "utf8")).toBe(config);
      await expect(assertPortFree("127.0.0.1", Number(otherEmulator.split(":")[1]), "x", "X")).resolves.toBeUndefined();
      // The first is untouched: it serves, and signs in.
      expect((await call(first, "health", null)).status).toBe(200);
      expect(await devToken("first@example.com")).toMatch(/^ey/);
    } finally {
      expect(await first.stop()).toBe(0);
      await database?.drop();
    }
  }, 90_000);

  it("when both start at the same moment, one serves and the other is refused", async () => {
    const dataDir = join(dataRoot, "two-at-once");
    const emulators = [emulatorHost, `127.0.0.1:${await freePort()}`];
    const results = await Promise.allSettled(emulators.map((emulator) => start(dataDir, { FIREBASE_AUTH_EMULATOR_HOST: emulator })));
    try {
      const refused = results.flatMap((result) => (result.status === "rejected" ? [String(result.reason)] : []));
      expect(refused, refused.join("\n")).toHaveLength(1);
      expect(refused[0]).toMatch(/npm start: .* in use by process \d+/);
      const winner = results.findIndex((result) => result.status === "fulfilled");
      const server = (results[winner] as PromiseFulfilledResult<ServeProcess>).value;
      expect((await call(server, "health", null)).status).toBe(200);
      expect(await devToken("both@example.com", emulators[winner])).toMatch(/^ey/);
    } finally {
      for (const result of results) if (result.status === "fulfilled") expect(await result.value.stop()).toBe(0);
      killLeftovers(dataDir);
    }
  }, 120_000);
});

describe("npm run dev:token", () => {
  it("says how to use it", async () => {
    const result = await npmRun("dev:token", [], {});
    expect([result.code, result.stderr.trim()]).toEqual([2, "usage: npm run dev:token -- <email>"]);
  });

  it("says when no emulator runs", async () => {
    const result = await npmRun("dev:token", ["a@example.com"], { FIREBASE_AUTH_EMULATOR_HOST: `127.0.0.1:${await closedPort()}` });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^dev:token: cannot reach the Firebase Auth emulator .*is npm start running\?\n$/);
  });

  it("gives up on an emulator that takes the connection and never answers", async () => {
    const silent = await silentServer();
    try {
      const result = await npmRun("dev:token", ["a@example.com"], { FIREBASE_AUTH_EMULATOR_HOST: `127.0.0.1:${silent.port}` });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^dev:token: cannot reach the Firebase Auth emulator /);
    } finally {
      await silent.close();
    }
  }, 20_000);
});
