import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "../../shared/local/ports.ts";
import { REPO_ROOT } from "./supabase-cli.ts";
import { cleanEnv } from "./run.ts";

export interface ServeProcess {
  baseUrl: string;
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
}

/**
 * `npm run serve` (or `npm start`) as a person starts it, waiting until it is ready. It runs in a
 * process group of its own, so that `kill()` can take down everything it started.
 */
export async function startServe(env: Record<string, string>, options: StartOptions = {}): Promise<ServeProcess> {
  const script = options.script ?? "serve";
  const port = options.port ?? await freePort();
  const child = spawn("npm", ["run", "-s", script], {
    cwd: REPO_ROOT,
    env: cleanEnv({ ...env, PORT: String(port) }),
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
    if (child.exitCode !== null) throw new Error(`${script} exited early:\n${output}`);
    if (Date.now() > deadline) {
      process.kill(-child.pid!, "SIGKILL");
      throw new Error(`${script} was not ready within 60 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    baseUrl,
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

function groupAlive(groupId: number): boolean {
  try {
    process.kill(-groupId, 0);
    return true;
  } catch {
    return false;
  }
}
