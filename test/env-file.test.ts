// `.env` at the repository root, read by every local command; the environment wins (contract,
// section 1). The commands run as people run them (`npm run ...`), each pointed at an env file of
// its own in a temporary directory through DMS_ENV_FILE, so that no test touches a real `.env`.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateKey, importFernetKey, keyId } from "../shared/crypto/fernet.ts";
import { DEFAULT_ENV_FILE, EnvFileError, parseEnvFile, readEnvFile } from "../shared/local/env-file.ts";
import { migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { closedPort } from "./support/fake-postgres.ts";
import { cleanEnv, npmRun, type RunResult } from "./support/run.ts";
import { startServe } from "./support/serve-process.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";

const FILE = "/somewhere/.env";
/** The message of the EnvFileError that parsing `text` throws. */
function parseError(text: string): string {
  try {
    parseEnvFile(text, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvFileError);
    return (error as Error).message;
  }
  throw new Error("parsed without an error");
}

describe("the env file's rules", () => {
  it("reads every form a person writes", () => {
    const text = [
      "\uFEFF# a comment, after a byte-order mark",
      "",
      "   ",
      "PLAIN=value",
      "export EXPORTED=1",
      "  SPACED  =  around the equals  ",
      "EMPTY=",
      "HASH_INSIDE=a#b",
      "TRAILING=value # a comment",
      "ONLY_COMMENT= # nothing",
      "SINGLE='keeps \\n and # and \" literally' # a comment",
      'DOUBLE="line\\nbreak \\"quoted\\" \\\\ # not a comment" # a comment',
      "URL=postgresql://postgres:p%40ss@127.0.0.1:5432/postgres?sslmode=require",
      "WINDOWS=crlf\r",
      "export_NAME=a name that starts with export",
    ].join("\n");
    expect(parseEnvFile(text, FILE)).toEqual({
      PLAIN: "value",
      EXPORTED: "1",
      SPACED: "around the equals",
      EMPTY: "",
      HASH_INSIDE: "a#b",
      TRAILING: "value",
      ONLY_COMMENT: "",
      SINGLE: 'keeps \\n and # and " literally',
      DOUBLE: 'line\nbreak "quoted" \\ # not a comment',
      URL: "postgresql://postgres:p%40ss@127.0.0.1:5432/postgres?sslmode=require",
      WINDOWS: "crlf",
      export_NAME: "a name that starts with export",
    });
  });

  it.each([
    ["a line without =", "OK=1\nsecret-value-1234", /^\/somewhere\/\.env line 2: expected NAME=value$/],
    ["a name that is not one", "OK=1\n\nmy secret-value-1234=x", /^\/somewhere\/\.env line 3: expected NAME=value, NAME being/],
    ["a name starting with a digit", "1X=secret-value-1234", /^\/somewhere\/\.env line 1: expected NAME=value, NAME being/],
    ["an unclosed double quote", 'KEY="secret-value-1234', /^\/somewhere\/\.env line 1: KEY: the double quote is not closed on this line$/],
    ["an unclosed single quote", "KEY='secret-value-1234", /^\/somewhere\/\.env line 1: KEY: the single quote is not closed on this line$/],
    ["text after the closing quote", "KEY='secret'-value-1234", /^\/somewhere\/\.env line 1: KEY: unexpected text after the closing quote$/],
    ["an unknown escape", 'KEY="secret\\x-value-1234"', /^\/somewhere\/\.env line 1: KEY: unknown escape in double quotes/],
    ["a name set twice", "KEY=a\n# c\nKEY=secret-value-1234", /^\/somewhere\/\.env line 3: KEY is already set on line 1$/],
  ])("refuses %s in one line naming the file and line, not the value", (_name, text, pattern) => {
    const message = parseError(text);
    expect(message).toMatch(pattern);
    expect(message).not.toContain("secret");
    expect(message.split("\n")).toHaveLength(1);
  });

  it("is the .env at the repository root; a missing file is no file", async () => {
    expect(DEFAULT_ENV_FILE).toBe(join(REPO_ROOT, ".env"));
    expect(await readEnvFile({ DMS_ENV_FILE: join(tmpdir(), "dms-no-such-dir", ".env") })).toEqual({});
  });

  it("says so when the file cannot be read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dms-env-"));
    try {
      await mkdir(join(dir, ".env"));
      await expect(readEnvFile({ DMS_ENV_FILE: join(dir, ".env") })).rejects.toThrow(`${join(dir, ".env")} cannot be read (EISDIR)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Every variable of the contract's configuration (section 1), which .env.example must name.
const CONTRACT_VARIABLES = [
  "DATABASE_URL", "SUPABASE_DB_URL", "DMS_DATA_DIR", "ENCRYPTION_KEY", "PREVIOUS_ENCRYPTION_KEYS",
  "FIREBASE_PROJECT_ID", "FIREBASE_JWKS_URL", "FIREBASE_AUTH_EMULATOR_HOST", "DEXCOM_CLIENT_ID",
  "DEXCOM_CLIENT_SECRET", "DEXCOM_REDIRECT_URI", "DEXCOM_API_BASE_URL", "DEXCOM_APP_REDIRECT_URL",
  "DEXCOM_SYNC_SECRET", "DEXCOM_CALLS_PER_HOUR", "DEXCOM_SYNC_INTERVAL_MINUTES", "DEXCOM_BACKFILL_DAYS",
  "ALLOWED_ORIGINS", "PORT", "DMS_DB_PORT",
];

describe(".env.example", () => {
  it("names every variable, each empty, so that copied as it is it changes nothing", async () => {
    const example = parseEnvFile(await readFile(join(REPO_ROOT, ".env.example"), "utf8"), ".env.example");
    expect(Object.keys(example)).toEqual(expect.arrayContaining(CONTRACT_VARIABLES));
    for (const [name, value] of Object.entries(example)) expect(value, name).toBe("");
  });

  it("is in git while .env is not", () => {
    const ignored = (path: string) => {
      try {
        execFileSync("git", ["check-ignore", "-q", "--no-index", path], { cwd: REPO_ROOT });
        return true;
      } catch {
        return false; // exit 1: not ignored
      }
    };
    expect(ignored(".env")).toBe(true);
    expect(ignored(".env.example")).toBe(false);
  });
});

describe("the local commands read the env file", () => {
  let test: TestDatabase;
  let dir: string;
  let serial = 0;
  beforeAll(async () => {
    test = await migratedPostgres();
    dir = await mkdtemp(join(tmpdir(), "dms-env-"));
  });
  afterAll(async () => {
    await test?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes an env file of these lines; returns the environment that points a command at it. */
  async function envFile(...lines: string[]): Promise<{ DMS_ENV_FILE: string }> {
    const path = join(dir, `${++serial}.env`);
    await writeFile(path, `${lines.join("\n")}\n`);
    return { DMS_ENV_FILE: path };
  }

  it("db:check connects to the DATABASE_URL of the file", async () => {
    const result = await npmRun("db:check", [], await envFile("# the test database", `export DATABASE_URL="${test.url}"`));
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`database: postgresql://postgres@127\\.0\\.0\\.1:5432/${test.name}\\b.* \\(from DATABASE_URL\\)`));
  });

  it("a variable set in the environment wins over the file", async () => {
    const down = `postgresql://postgres@127.0.0.1:${await closedPort()}/postgres`;
    const result = await npmRun("db:check", [], { ...await envFile(`DATABASE_URL=${down}`), DATABASE_URL: test.url });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`database: postgresql://postgres@127\\.0\\.0\\.1:5432/${test.name}\\b.* \\(from DATABASE_URL\\)`));
  });

  it("keys:rotate takes ENCRYPTION_KEY from the file", async () => {
    const key = generateKey();
    const file = await envFile(`DATABASE_URL=${test.url}`, `ENCRYPTION_KEY='${key}'`);
    const result = await npmRun("keys:rotate", ["--dry-run"], file);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n")[0]).toBe(
      `keys:rotate: primary key ${keyId(await importFernetKey(key))} (ENCRYPTION_KEY), 0 previous keys; dry run: nothing is written`,
    );
    expect(result.stdout).not.toContain(key);
  });

  it("npm run serve is configured from the file", async () => {
    const file = await envFile(
      `DATABASE_URL=${test.url}`,
      "FIREBASE_PROJECT_ID=env-file-project",
      `ENCRYPTION_KEY=${generateKey()}`,
      "ALLOWED_ORIGINS=https://app.example.com",
    );
    const serve = await startServe(file);
    try {
      const response = await fetch(`${serve.baseUrl}/functions/v1/health`, { headers: { origin: "https://app.example.com" } });
      expect(response.status).toBe(200);
      expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
      expect(serve.output()).toMatch(new RegExp(`serving the functions on postgresql://postgres@127\\.0\\.0\\.1:5432/${test.name}\\b.* \\(from DATABASE_URL\\)`));
    } finally {
      await serve.kill();
    }
  });

  // Each in a process group of its own: should a command not stop at the file (a regression), the
  // stack or server it starts is stopped as Ctrl-C stops it (the emulator with it), not left running.
  const groups = new Map<ChildProcess, Promise<RunResult>>();
  afterEach(async () => {
    for (const [child, closed] of groups) {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGTERM");
      await closed;
    }
    groups.clear();
  });
  function npmRunInGroup(script: string, args: string[], env: Record<string, string>): Promise<RunResult> {
    const child = spawn("npm", ["run", "-s", script, "--", ...args], { cwd: REPO_ROOT, env: cleanEnv(env), detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => (stdout += chunk));
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    const closed = new Promise<RunResult>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    groups.set(child, closed);
    return closed;
  }

  const SECRET = "Sup3r-Secret-Pa55";
  it.each([
    ["db:check", [], "db:check failed"],
    ["keys:rotate", [], "keys:rotate failed"],
    ["dexcom:sync", [], "dexcom:sync failed"],
    ["serve", [], "serve"],
    ["start", [], "npm start"],
    ["dev:token", ["you@example.com"], "dev:token"],
  ])("npm run %s stops at a malformed line: one line naming the file and line, exit 1", async (script, args, prefix) => {
    const file = await envFile(`DATABASE_URL=${test.url}`, "", `ENCRYPTION_KEY="${SECRET}`);
    // Its own data directory: should `npm start` not stop, it must not touch the repository's.
    const result = await npmRunInGroup(script, args, { ...file, DMS_DATA_DIR: join(dir, "data") });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`${prefix}: ${file.DMS_ENV_FILE} line 3: ENCRYPTION_KEY: the double quote is not closed on this line\n`);
    expect(result.stderr).not.toContain(SECRET);
  });
});
