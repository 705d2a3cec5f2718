import { spawn } from "node:child_process";
import { join } from "node:path";
import { inject } from "vitest";
import { ENV_FILE_OVERRIDE } from "../../shared/local/env-file.ts";
import { RUN_VARIABLE } from "./processes.ts";
import { REPO_ROOT } from "./supabase-cli.ts";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

// What the app reads from its environment: a developer's own settings (their database, their
// `npm start`'s ports) must not reach a command a test runs.
const APP_SETTINGS = /^(DATABASE_|SUPABASE_DB_URL|DMS_|ENCRYPTION_KEY|PREVIOUS_ENCRYPTION_KEYS|PORT$|FIREBASE_|ALLOWED_ORIGINS|DEXCOM_|BENCH_)/;

/**
 * The environment of a command run by a test: none of the app's settings leak in from outside, the
 * repository's `.env` (a developer's) is not read unless `extra` names a DMS_ENV_FILE, and
 * DMS_TEST_RUN marks it and everything it starts as this run's, to be killed at the end of the run.
 */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !APP_SETTINGS.test(key)) env[key] = value;
  }
  return {
    ...env,
    [ENV_FILE_OVERRIDE]: join(inject("testRunDir"), "no-such.env"), // never created
    [RUN_VARIABLE]: inject("testRunId"),
    ...extra,
  };
}

/** Runs `npm run -s <script> -- args` in the repository, as a person would. */
export function npmRun(script: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return run("npm", ["run", "-s", script, "--", ...args], env);
}

/** Runs a command in the repository with a clean environment, collecting its output. */
export function run(command: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env: cleanEnv(env) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
