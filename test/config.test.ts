import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, portFrom } from "../shared/app/config.ts";
import { generateKey } from "../shared/crypto/fernet.ts";
import { cleanEnv, npmRun, run, type RunResult } from "./support/run.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";
import { closedPort } from "./support/fake-postgres.ts";

const BAD_KEY = "this-is-not-a-fernet-key-but-a-secret";

/** A deployed function's entry, run as the edge runtime would: `deno run functions/<name>/index.ts`. */
function runEntry(name: string, env: Record<string, string>): Promise<RunResult> {
  return run("node_modules/.bin/deno", ["run", "-A", "--quiet", `functions/${name}/index.ts`], env);
}

describe("configuration from the environment", () => {
  it.each([
    ["8080", 8080],
    [" 8080 ", 8080],
    ["", 54_321],
    [undefined, 54_321],
  ])("reads PORT=%j as %i", (value, expected) => {
    expect(portFrom({ PORT: value })).toBe(expected);
  });

  it.each(["0x10", "1e3", "80.5", "-1", "0", "65536", "eighty"])("refuses PORT=%j", async (value) => {
    expect(portFrom({ PORT: value })).toBeNull();
    const error = await loadConfig({ PORT: value, DATABASE_POOL_SIZE: value }, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toContain("PORT is not a port number");
  });

  it.each(["0x10", "1e1", "0", "101"])("refuses DATABASE_POOL_SIZE=%j", async (value) => {
    const error = await loadConfig({ DATABASE_POOL_SIZE: value }, {}).catch((e: unknown) => e);
    expect((error as ConfigError).problems).toEqual(["DATABASE_POOL_SIZE is not a number from 1 to 100"]);
  });

  it("stops a function at start with one line per problem, naming each variable", async () => {
    const result = await runEntry("dexcom-tokens", { ENCRYPTION_KEY: BAD_KEY, ALLOWED_ORIGINS: "*", PORT: "not-a-port" });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n").sort()).toEqual([
      "dexcom-tokens: DATABASE_URL (or SUPABASE_DB_URL) is not set",
      "dexcom-tokens: ENCRYPTION_KEY is not a valid Fernet key (32 bytes in padded base64, url-safe or standard alphabet)",
      "dexcom-tokens: FIREBASE_PROJECT_ID is not set",
      "dexcom-tokens: PORT is not a port number",
    ]);
    expect(result.stderr).not.toContain(BAD_KEY);
  });

  it("asks each function only for what it uses", async () => {
    const result = await runEntry("health", {});
    expect([result.code, result.stderr.trim()]).toEqual([1, "health: DATABASE_URL (or SUPABASE_DB_URL) is not set"]);
  });

  it("refuses a database URL that is not one, without echoing it", async () => {
    const result = await runEntry("health", { DATABASE_URL: `not a url ${BAD_KEY}` });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^health: DATABASE_URL is not a valid URL/);
    expect(result.stderr).not.toContain(BAD_KEY);
  });

  it("stops npm run serve the same way", async () => {
    const result = await npmRun("serve", [], { DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/postgres" });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n").sort()).toEqual([
      "serve: ENCRYPTION_KEY is not set",
      "serve: FIREBASE_PROJECT_ID is not set",
    ]);
  });

  it("warns loudly when the Firebase Auth emulator mode is on", async () => {
    const env = {
      DATABASE_URL: `postgresql://postgres@127.0.0.1:${await closedPort()}/postgres`,
      FIREBASE_PROJECT_ID: "demo-dms",
      ENCRYPTION_KEY: generateKey(),
      FIREBASE_AUTH_EMULATOR_HOST: "127.0.0.1:9099",
      PORT: String(await closedPort()),
    };
    const child = spawn("node_modules/.bin/deno", ["run", "-A", "--quiet", "scripts/serve.ts"], { cwd: REPO_ROOT, env: cleanEnv(env) });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    while (!output.includes("serving the functions")) await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill("SIGTERM");
    await new Promise((resolve) => child.on("close", resolve));
    expect(output).toMatch(/WARNING: FIREBASE_AUTH_EMULATOR_HOST is set .*UNSIGNED Firebase ID tokens are accepted/);
  });
});

describe("the Dexcom app's configuration (DEXCOM_*)", () => {
  // Recognisable values, to show that no problem line ever carries a value.
  const SECRET = "dexcom-client-secret-must-not-leak-42";
  const APP = {
    DEXCOM_CLIENT_ID: "dexcom-client-id-value-17",
    DEXCOM_CLIENT_SECRET: SECRET,
    DEXCOM_REDIRECT_URI: "https://project.supabase.co/functions/v1/dexcom-oauth/callback",
  };

  async function configError(env: Record<string, string>): Promise<ConfigError> {
    const error = await loadConfig(env, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }

  it("all three set: the Dexcom app, with Dexcom's production API by default and no app redirect", async () => {
    const config = await loadConfig(APP, {});
    expect(config.dexcom).toEqual({
      clientId: APP.DEXCOM_CLIENT_ID,
      clientSecret: SECRET,
      redirectUri: APP.DEXCOM_REDIRECT_URI,
      apiBaseUrl: "https://api.dexcom.com",
      appRedirectUrl: null,
      syncSecret: null,
      callsPerHour: 50_000,
      syncIntervalMinutes: 60,
      backfillDays: 90,
    });
  });

  it.each([
    ["https://sandbox-api.dexcom.com/", "https://sandbox-api.dexcom.com"],
    ["https://api.dexcom.eu//", "https://api.dexcom.eu"],
    ["http://127.0.0.1:8089", "http://127.0.0.1:8089"],
  ])("DEXCOM_API_BASE_URL=%j is used as %j (trailing slashes stripped)", async (value, expected) => {
    const config = await loadConfig({ ...APP, DEXCOM_API_BASE_URL: value }, {});
    expect(config.dexcom?.apiBaseUrl).toBe(expected);
  });

  it("none set (or all empty, as env files leave them): null, and the server still starts", async () => {
    expect((await loadConfig({}, {})).dexcom).toBeNull();
    expect((await loadConfig({ DEXCOM_CLIENT_ID: "", DEXCOM_CLIENT_SECRET: " ", DEXCOM_REDIRECT_URI: "" }, {})).dexcom).toBeNull();
  });

  const names = Object.keys(APP) as (keyof typeof APP)[];
  const partial = [[0], [1], [2], [0, 1], [0, 2], [1, 2]].map((set) => set.map((i) => names[i]!));

  it.each(partial.map((set) => [set.join(" + "), set] as const))("only %s set: ConfigError naming each missing one, never a value", async (_, set) => {
    const env = Object.fromEntries(set.map((name) => [name, APP[name]]));
    const error = await configError(env);
    const missing = names.filter((name) => !set.includes(name));
    expect(error.problems).toHaveLength(missing.length);
    for (const name of missing) expect(error.problems.some((line) => line.startsWith(`${name} `))).toBe(true);
    for (const value of Object.values(APP)) expect(error.message).not.toContain(value);
  });

  it("a blank DEXCOM_CLIENT_SECRET beside the other two counts as missing", async () => {
    const error = await configError({ ...APP, DEXCOM_CLIENT_SECRET: "   " });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^DEXCOM_CLIENT_SECRET /);
  });

  it.each([
    "not a url at all",
    "ftp://api.dexcom.example/base",
    "https://api.dexcom.example/?region=us",
    "https://api.dexcom.example/#top",
  ])("a bad DEXCOM_API_BASE_URL (%j): ConfigError naming it, never its value", async (value) => {
    const error = await configError({ ...APP, DEXCOM_API_BASE_URL: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^DEXCOM_API_BASE_URL /);
    expect(error.message).not.toContain(value);
    expect(error.message).not.toContain(SECRET);
  });

  it.each([
    ["dms://x", "dms://x"],
    ["dms://dexcom-connected", "dms://dexcom-connected"],
    ["https://app.example.com/dexcom/done", "https://app.example.com/dexcom/done"],
  ])("DEXCOM_APP_REDIRECT_URL=%j is kept (a custom app scheme too)", async (value, expected) => {
    const config = await loadConfig({ ...APP, DEXCOM_APP_REDIRECT_URL: value }, {});
    expect(config.dexcom?.appRedirectUrl).toBe(expected);
  });

  it("DEXCOM_APP_REDIRECT_URL that is not a URL: ConfigError naming it", async () => {
    const error = await configError({ ...APP, DEXCOM_APP_REDIRECT_URL: "just words" });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^DEXCOM_APP_REDIRECT_URL /);
    expect(error.message).not.toContain("just words");
  });
});
