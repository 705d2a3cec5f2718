import { spawn } from "node:child_process";
import { REPO_ROOT } from "./supabase-cli.ts";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a command run by a test: no database or key settings leak in from outside. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(DATABASE_URL|SUPABASE_DB_URL|DMS_|ENCRYPTION_KEY|PREVIOUS_ENCRYPTION_KEYS)/.test(key)) {
      env[key] = value;
    }
  }
  return { ...env, ...extra };
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
