import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "./supabase-cli.ts";

export interface LockHolder {
  pid: number;
  /** SIGKILL, as the OOM killer or `kill -9` would; resolves once the process is gone. */
  kill(): Promise<void>;
}

const DENO = join(REPO_ROOT, "node_modules/.bin/deno");
const LOCK_MODULE = pathToFileURL(join(REPO_ROOT, "shared/db/data-dir-lock.ts")).href;

/**
 * Another process, Deno as `npm start` is, holding the data directory's lock by the real
 * lockDataDir until it is killed. Resolves once it holds it.
 */
export async function holdDataDir(dir: string): Promise<LockHolder> {
  const code = `import { lockDataDir } from ${JSON.stringify(LOCK_MODULE)};
await lockDataDir(${JSON.stringify(dir)});
console.log("held");
setInterval(() => {}, 60_000);`;
  const child = spawn(DENO, ["eval", "--quiet", code], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    child.kill("SIGKILL");
    await exited;
  };
  try {
    await held(child);
  } catch (error) {
    await kill();
    throw error;
  }
  return { pid: child.pid!, kill };
}

function held(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`the lock holder did not take the lock within 30 s: ${output}`)), 30_000);
    const done = (error?: Error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      if (output.includes("held")) done();
    });
    child.stderr!.on("data", (chunk) => (output += chunk));
    child.once("exit", (code) => done(new Error(`the lock holder exited (${code}): ${output}`)));
  });
}
