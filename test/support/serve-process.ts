import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { inject } from "vitest";
import { freePort } from "../../shared/local/ports.ts";
import { REPO_ROOT } from "./supabase-cli.ts";
import { cleanEnv } from "./run.ts";

export interface ServeProcess {
  baseUrl: string;
  /** The DMS_DATA_DIR it runs with: the test's, or a new one in the run's directory. */
  dataDir: string;
  child: ChildProcess;
  output(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL to it and everything it started. */
  kill(): Promise<number | null>;
}

export interface StartOptions {
  script?: string;
  /** Ready when the output matches this; by default, when /health answers. */
  readyWhen?: RegExp;
  port?: number;
  /** Where to run it: the repository by default (a copy of it, for a test that edits its files). */
  cwd?: string;
  /** After the script's name: `["--watch"]`. */
  args?: string[];
}

/**
 * `npm run serve` (or `npm start`) as a person starts it, waiting until it is ready. It runs in a
 * process group of its own, so that `kill()` can take down everything it started.
 *
 * Nothing it uses is shared with a developer's own stack: PORT is `options.port` or a free port;
 * DMS_DATA_DIR, unless `env` gives it, a new directory of the run's; and for `npm start`,
 * FIREBASE_AUTH_EMULATOR_HOST and DMS_DB_PORT, unless `env` gives them, free ports too. These win
 * over an env file's (DMS_ENV_FILE), as the environment does.
 */
export async function startServe(env: Record<string, string>, options: StartOptions = {}): Promise<ServeProcess> {
  const script = options.script ?? "serve";
  const port = options.port ?? await freePort();
  const dataDir = env.DMS_DATA_DIR ?? await mkdtemp(join(inject("testRunDir"), `${script}-data-`));
  const stackPorts: Record<string, string> = script === "start"
    ? {
      FIREBASE_AUTH_EMULATOR_HOST: env.FIREBASE_AUTH_EMULATOR_HOST ?? `127.0.0.1:${await freePort()}`,
      DMS_DB_PORT: env.DMS_DB_PORT ?? String(await freePort()),
    }
    : {};
  const child = spawn("npm", ["run", "-s", script, ...(options.args ? ["--", ...options.args] : [])], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cleanEnv({ ...env, ...stackPorts, DMS_DATA_DIR: dataDir, PORT: String(port) }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;

  const ready = async () => {
    if (options.readyWhen) return options.readyWhen.test(output);
    try {
      return (await fetch(`${baseUrl}/functions/v1/health`)).status < 500;
    } catch {
      return false; // not listening yet
    }
  };
  const deadline = Date.now() + 60_000;
  while (!(await ready())) {
    if (child.exitCode !== null) {
      killGroup(child.pid!); // npm is gone; what it started may not be
      throw new Error(`${script} exited early:\n${output}`);
    }
    if (Date.now() > deadline) {
      killGroup(child.pid!);
      throw new Error(`${script} was not ready within 60 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    baseUrl,
    dataDir,
    child,
    output: () => output,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
    kill: async () => {
      process.kill(-child.pid!, "SIGKILL");
      const code = await exited;
      // npm goes first; wait until every process of the group is gone too.
      while (groupAlive(child.pid!)) await new Promise((resolve) => setTimeout(resolve, 20));
      return code;
    },
  };
}

function killGroup(groupId: number): void {
  try {
    process.kill(-groupId, "SIGKILL");
  } catch {
    // gone already
  }
}

function groupAlive(groupId: number): boolean {
  try {
    process.kill(-groupId, 0);
    return true;
  } catch {
    return false;
  }
}
