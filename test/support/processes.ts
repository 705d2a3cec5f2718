import { readdirSync, readFileSync } from "node:fs";

/** A live process as /proc shows it (Linux). */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

/**
 * Every live process (zombies left out: they hold nothing) whose environment has `VAR=value`
 * exactly: a whole `npm start` (npm, Deno, the emulator, anything they start) shares the
 * DMS_DATA_DIR it was given, whoever its parent is by now.
 */
export function processesWithEnv(variable: string, value: string): ProcessInfo[] {
  const wanted = `${variable}=${value}`;
  return allProcesses().filter((info) => read(`/proc/${info.pid}/environ`).split("\0").includes(wanted));
}

/**
 * Set by cleanEnv (./run.ts) on every command a test starts, to the id of the test run; inherited
 * by whatever those commands start in turn (npm, Deno, the Auth emulator). It is how the end of the
 * run finds what a failed or timed-out test left running, wherever it now hangs in the process tree.
 */
export const RUN_VARIABLE = "DMS_TEST_RUN";

/**
 * SIGKILLs every live process whose environment has DMS_TEST_RUN=`runId`, never this process, and
 * returns their pids. Synchronous, so that it can run in a process's "exit" handler. Another run's
 * processes (another id) are left alone: runs may go on side by side.
 */
export function killRunProcesses(runId: string): number[] {
  const killed = new Set<number>();
  // A process may start another between the listing and the kill, and one killed stays listed
  // until the kernel has taken it down: list again until none is left (a few rounds at most).
  for (let round = 0; round < 100; round++) {
    const found = processesWithEnv(RUN_VARIABLE, runId).filter(({ pid }) => pid !== process.pid);
    if (found.length === 0) break;
    for (const { pid } of found) {
      try {
        process.kill(pid, "SIGKILL");
        killed.add(pid);
      } catch {
        // gone meanwhile
      }
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // a synchronous pause
  }
  return [...killed];
}

/** The environment of process `pid`; empty when it is gone. */
export function environmentOf(pid: number): Record<string, string> {
  const entries = read(`/proc/${pid}/environ`).split("\0").filter(Boolean);
  return Object.fromEntries(entries.map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]));
}

/** The live children of `pid`. */
export function childrenOf(pid: number): ProcessInfo[] {
  return allProcesses().filter((info) => info.ppid === pid);
}

/** Polls `check` every 100 ms until it returns true; false if it still does not after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function allProcesses(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ")".
    const stat = read(`/proc/${entry}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields.length < 2 || fields[0] === "Z") continue;
    found.push({
      pid: Number(entry),
      ppid: Number(fields[1]),
      cmdline: read(`/proc/${entry}/cmdline`).replaceAll("\0", " ").trim(),
    });
  }
  return found;
}

// A process may end between listing and reading: it is then simply not there.
function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
