import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMigrations } from "../shared/db/migrations.ts";
import { migratedPglite, migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { closedPort, passwordRefusingServer, silentServer } from "./support/fake-postgres.ts";
import { holdDataDir } from "./support/lock-holder.ts";
import { npmRun, type RunResult } from "./support/run.ts";

const PASSWORD = "Sup3r-Secret-Pa55";
const newest = (await readMigrations()).at(-1)!;
/** A database URL with the password, at a local port. */
const urlAtPort = (port: number) => `postgresql://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;

function expectOneClearLine(result: RunResult, pattern: RegExp) {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trim().split("\n");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^db:check failed: /);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toContain(PASSWORD);
  expect(result.stderr).not.toMatch(/\bat .*:\d+:\d+/);
}

describe("npm run db:check", () => {
  let test: TestDatabase;
  beforeAll(async () => (test = await migratedPostgres()));
  afterAll(() => test.drop());

  it("prints the server version and the newest applied migration", async () => {
    const withPassword = test.url.replace("postgres@", `postgres:${PASSWORD}@`);
    const result = await npmRun("db:check", [], { DATABASE_URL: withPassword });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`database: postgresql://postgres@127.0.0.1:5432/${test.name} (from DATABASE_URL)`);
    expect(result.stdout).toMatch(/server: PostgreSQL 1\d\.\d+/);
    expect(result.stdout).toContain(`newest migration: ${newest.version} ${newest.name}`);
    expect(result.stdout).not.toContain(PASSWORD);
  });

  it("falls back to SUPABASE_DB_URL", async () => {
    const result = await npmRun("db:check", [], { SUPABASE_DB_URL: test.url });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("(from SUPABASE_DB_URL)");
  });

  it("says when the server is down", async () => {
    const port = await closedPort();
    const result = await npmRun("db:check", [], { DATABASE_URL: urlAtPort(port) });
    expectOneClearLine(result, /connection refused/);
  });

  it.each([
    ["says when the password is wrong, without the password", passwordRefusingServer, /authentication failed/],
    ["gives up on a server that never answers", silentServer, /timed out/],
  ])("%s", async (_name, startServer, pattern) => {
    const server = await startServer();
    try {
      const result = await npmRun("db:check", [], { DATABASE_URL: urlAtPort(server.port) });
      expectOneClearLine(result, pattern);
    } finally {
      await server.close();
    }
  });

  it("says when the database does not exist", async () => {
    const result = await npmRun("db:check", [], { DATABASE_URL: test.url.replace(test.name, "no_such_database") });
    expectOneClearLine(result, /does not exist/);
  });

  it.each([
    ["not a URL", `not a url with ${PASSWORD}`, /DATABASE_URL is not a valid URL/],
    ["another scheme", `mysql://root:${PASSWORD}@127.0.0.1/db`, /DATABASE_URL is not a postgresql:\/\/ URL/],
  ])("refuses %s", async (_name, url, pattern) => {
    expectOneClearLine(await npmRun("db:check", [], { DATABASE_URL: url }), pattern);
  });

  describe("on the embedded database", () => {
    let dataDir: string;
    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), "dms-db-check-"));
    });
    afterAll(() => rm(dataDir, { recursive: true, force: true }));

    it("says there is none yet", async () => {
      const result = await npmRun("db:check", [], { DMS_DATA_DIR: join(dataDir, "missing") });
      expectOneClearLine(result, /no embedded database/);
    });

    // A directory that exists is not a database: only PGlite's own files (PG_VERSION) make one.
    it.each([
      ["an empty directory", {}],
      ["a directory of notes", { "notes.txt": "my notes\n" }],
      ["a directory with only a lock file left", { "dms.lock": "" }],
      ["npm start's state on a DATABASE_URL (no database of its own)", { "dms-start.lock": "", "dms-dev-encryption-key": "x\n" }],
    ])("says there is none in %s, and writes nothing there", async (name, files: Record<string, string>) => {
      const dir = join(dataDir, `no-database-${name.replace(/\W+/g, "-")}`);
      await mkdir(dir);
      for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
      const result = await npmRun("db:check", [], { DMS_DATA_DIR: dir });
      expectOneClearLine(result, new RegExp(`no embedded database in ${dir} yet`));
      expect((await readdir(dir)).sort()).toEqual(Object.keys(files).sort());
      for (const [file, text] of Object.entries(files)) expect(await readFile(join(dir, file), "utf8")).toBe(text);
    });

    it("reports PGlite and its newest migration", async () => {
      await (await migratedPglite(dataDir)).close();
      const result = await npmRun("db:check", [], { DMS_DATA_DIR: dataDir });
      expect(result.stderr).toBe("");
      expect(result.stdout).toContain(`database: embedded PGlite in ${dataDir}`);
      expect(result.stdout).toMatch(/server: PostgreSQL \d+\.\d+ \(PGlite/);
      expect(result.stdout).toContain(`newest migration: ${newest.version} ${newest.name}`);
    });

    // After a hard kill the file still names the dead holder, and a restarted container gives its
    // new process that very pid (1, say): a live pid proves nothing, only a held lock does.
    it.each([
      ["1 (a container's first process)", () => "1"],
      ["a live process that does not hold it (this test's)", () => String(process.pid)],
    ])("is not fooled by a lock file naming %s", async (_name, pid) => {
      const fresh = join(dataDir, `pid-${pid()}`);
      await (await migratedPglite(fresh)).close();
      await writeFile(join(fresh, "dms.lock"), pid());
      const result = await npmRun("db:check", [], { DMS_DATA_DIR: fresh });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`newest migration: ${newest.version}`);
    });

    it("is refused in one line while another process holds the database, and works once it is killed", async () => {
      const held = join(dataDir, "held");
      await (await migratedPglite(held)).close();
      const holder = await holdDataDir(held);
      try {
        expectOneClearLine(
          await npmRun("db:check", [], { DMS_DATA_DIR: held }),
          new RegExp(`the embedded database in ${held} is in use by process ${holder.pid} \\(npm start\\?\\); stop it first, or set DATABASE_URL$`),
        );
      } finally {
        await holder.kill();
      }
      const result = await npmRun("db:check", [], { DMS_DATA_DIR: held });
      expect([result.code, result.stderr]).toEqual([0, ""]);
    });
  });
});
