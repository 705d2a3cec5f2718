// Self-hosting: the migrations on a plain PostgreSQL that never saw Supabase, deployed with the real
// CLI and nothing else. Supabase's API roles belong to the whole server, and the shared test server
// has them (every test database is bootstrapped), so a database made there would pass whatever the
// migrations do. Each test therefore runs its own brand-new server (initdb, then postgres on a free
// port), where no bootstrap ever ran.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { generateKey } from "../shared/crypto/fernet.ts";
import type { Database } from "../shared/db/database.ts";
import { appliedVersions, readMigrations } from "../shared/db/migrations.ts";
import { connectPostgres } from "../shared/db/postgres.ts";
import { freePort } from "../shared/local/ports.ts";
import { createTestKeys } from "./support/firebase-tokens.ts";
import { serveJwks } from "./support/jwks-http-server.ts";
import { insertToken, insertUser } from "./support/rows.ts";
import { startServe } from "./support/serve-process.ts";
import { supabase } from "./support/supabase-cli.ts";

const migrations = await readMigrations();
const versions = migrations.map((m) => m.version);
const API_ROLES = "('anon', 'authenticated', 'service_role')";

interface PlainServer {
  /** `postgresql://postgres@127.0.0.1:<port>/<database>?sslmode=disable` */
  url(database: string): string;
  /** Runs `fn` on a connection to `database`, closed afterwards. */
  on<T>(database: string, fn: (db: Database) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

/** Where this machine's PostgreSQL server programs are: `pg_config --bindir`, else the PATH. */
function serverProgram(name: "initdb" | "postgres"): string {
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim();
    if (existsSync(join(dir, name))) return join(dir, name);
  } catch {
    // no pg_config: rely on the PATH
  }
  return name;
}

/**
 * A new PostgreSQL server of its own: a fresh cluster in a temporary directory, trust auth for
 * `postgres`, listening on 127.0.0.1 only (no Unix socket). The server refuses to run as root, so
 * under root (CI containers) it runs as the `postgres` system user. Throws when initdb fails or the
 * server does not accept connections within 30 s.
 */
async function startPlainServer(): Promise<PlainServer> {
  const dir = await mkdtemp(join(tmpdir(), "dms-plain-pg-"));
  const asRoot = process.getuid?.() === 0;
  const run = (program: string, args: string[]) =>
    asRoot
      ? { command: "setpriv", args: ["--reuid=postgres", "--regid=postgres", "--init-groups", program, ...args] }
      : { command: program, args };
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  try {
    if (asRoot) {
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
      const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
      await chown(dir, uid, gid);
    }
    const data = join(dir, "data");
    const initdb = run(serverProgram("initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
    execFileSync(initdb.command, initdb.args, { stdio: "pipe" });

    const port = await freePort();
    const server = run(serverProgram("postgres"), [
      "-D", data, "-p", String(port),
      "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
    ]);
    let log = "";
    child = spawn(server.command, server.args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (chunk) => (log += chunk));
    child.stderr!.on("data", (chunk) => (log += chunk));
    const started = child;
    exited = new Promise((resolve) => started.once("exit", resolve));

    const url = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}?sslmode=disable`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const probe = postgres(url("postgres"), { max: 1, onnotice: () => {}, connect_timeout: 2 });
      try {
        await probe`SELECT 1`;
        break;
      } catch (error) {
        if (started.exitCode !== null || Date.now() > deadline) throw new Error(`plain PostgreSQL did not start: ${error}\n${log}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        await probe.end();
      }
    }
    return {
      url,
      on: async (database, fn) => {
        const db = connectPostgres(url(database), { max: 4 });
        try {
          return await fn(db);
        } finally {
          await db.close();
        }
      },
      stop: async () => {
        started.kill("SIGINT"); // fast shutdown: ends sessions, no checkpoint wait for clients
        await exited;
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    child?.kill("SIGKILL");
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A brand-new server with one empty database `app` (CREATE DATABASE, nothing else), for `fn`. */
async function withPlainDatabase(fn: (server: PlainServer) => Promise<void>): Promise<void> {
  const server = await startPlainServer();
  try {
    await server.on("postgres", async (db) => {
      // The point of the exercise: nothing of Supabase's anywhere on this server.
      const roles = await db.query(`SELECT rolname FROM pg_roles WHERE rolname IN ${API_ROLES}`);
      expect(roles).toEqual([]);
      await db.exec("CREATE DATABASE app");
    });
    await fn(server);
  } finally {
    await server.stop();
  }
}

async function expectCli(...args: string[]): Promise<string> {
  const result = await supabase(...args);
  expect(result.code, result.output).toBe(0);
  return result.output;
}

describe("a brand-new plain PostgreSQL server, deployed with the real Supabase CLI only", () => {
  it("`db push` applies every migration, `migration list` shows each applied, the advisors find nothing", async () => {
    await withPlainDatabase(async (server) => {
      await expectCli("db", "push", "--db-url", server.url("app"));
      const list = await expectCli("migration", "list", "--db-url", server.url("app"));
      for (const version of versions) expect(list).toMatch(new RegExp(`${version}\\S*\\s*\\|\\s*\\S*${version}`));

      await server.on("app", async (db) => {
        expect(await appliedVersions(db)).toEqual(versions);
        // The API roles the migrations lock out now exist as Supabase defines them, and are locked out.
        const roles = await db.query(
          `SELECT rolname, rolcanlogin, rolinherit, rolbypassrls FROM pg_roles WHERE rolname IN ${API_ROLES} ORDER BY rolname`,
        );
        expect(roles).toEqual([
          { rolname: "anon", rolcanlogin: false, rolinherit: false, rolbypassrls: false },
          { rolname: "authenticated", rolcanlogin: false, rolinherit: false, rolbypassrls: false },
          { rolname: "service_role", rolcanlogin: false, rolinherit: false, rolbypassrls: true },
        ]);
        const [access] = await db.query(
          `SELECT has_table_privilege('anon', 'public.users', 'SELECT') AS anon_reads,
                  has_table_privilege('service_role', 'public.users', 'SELECT') AS service_role_reads`,
        );
        expect(access).toEqual({ anon_reads: false, service_role_reads: true });
      });

      await expectCli("db", "advisors", "--db-url", server.url("app"), "--type", "all", "--fail-on", "warn");
    });
  }, 180_000);

  it("then serves the app: `npm run serve` on it registers a user and stores a Dexcom token", async () => {
    await withPlainDatabase(async (server) => {
      await expectCli("db", "push", "--db-url", server.url("app"));
      const keys = await createTestKeys();
      const jwks = await serveJwks(keys.jwks);
      const serve = await startServe({
        DATABASE_URL: server.url("app"),
        FIREBASE_PROJECT_ID: keys.projectId,
        FIREBASE_JWKS_URL: jwks.url,
        ENCRYPTION_KEY: generateKey(),
      }).catch(async (error) => {
        await jwks.close();
        throw error;
      });
      try {
        const headers = { authorization: `Bearer ${await keys.idToken({ sub: "plain-uid", email: "plain@example.com" })}` };
        const base = `${serve.baseUrl}/functions/v1`;
        const registered = await fetch(`${base}/users`, { method: "POST", headers });
        expect(registered.status, await registered.clone().text()).toBe(201);
        expect((await registered.json()).user).toMatchObject({ firebase_uid: "plain-uid", email: "plain@example.com" });

        const stored = await fetch(`${base}/dexcom-tokens`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify({ access_token: "dexcom-access", refresh_token: "dexcom-refresh", expires_in: 7200 }),
        });
        expect(stored.status, await stored.clone().text()).toBe(201);
        const connected = await (await fetch(`${base}/dexcom-tokens`, { headers })).json();
        expect(connected.connected).toBe(true);
      } finally {
        await serve.stop();
        await jwks.close();
      }
    });
  }, 180_000);

  it("adopts a database the Python backend made there: repair the first migration, push the rest", async () => {
    await withPlainDatabase(async (server) => {
      // The original DDL exactly as the Python backend ran it, Alembic's table, and data.
      const made = await server.on("app", async (db) => {
        await db.exec(migrations[0]!.sql);
        await db.exec("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('a1b2c3')");
        const alice = await insertUser(db, { email: "alice@example.com" });
        const older = await insertToken(db, alice, { created_at: "2025-01-01T00:00:00Z" });
        const newer = await insertToken(db, alice, { created_at: "2025-06-01T00:00:00Z" });
        return { alice, older, newer };
      });

      await expectCli("migration", "repair", "--status", "applied", versions[0]!, "--db-url", server.url("app"));
      await expectCli("db", "push", "--db-url", server.url("app"));

      await server.on("app", async (db) => {
        expect(await appliedVersions(db)).toEqual(versions);
        expect(await db.query("SELECT id, email FROM users")).toEqual([{ id: made.alice, email: "alice@example.com" }]);
        expect(await db.query("SELECT id, is_revoked FROM dexcom_tokens ORDER BY id")).toEqual([
          { id: made.older, is_revoked: true },
          { id: made.newer, is_revoked: false },
        ]);
        const [alembic] = await db.query(
          "SELECT relrowsecurity AS rls, has_table_privilege('anon', oid, 'SELECT') AS anon FROM pg_class WHERE oid = 'public.alembic_version'::regclass",
        );
        expect(alembic).toEqual({ rls: true, anon: false });
      });
    });
  }, 180_000);
});
