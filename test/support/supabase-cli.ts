import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = fileURLToPath(new URL("../../node_modules/.bin/supabase", import.meta.url));

export interface CliResult {
  code: number;
  output: string;
}

/** Runs the real Supabase CLI (the pinned npm package) in the repository. */
export function supabase(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      CLI,
      [...args, "--yes"],
      { cwd: REPO_ROOT, env: { ...process.env, DO_NOT_TRACK: "1" }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}\n${stderr}` });
      },
    );
  });
}
