import { spawn } from "node:child_process";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { DatabaseConfigError } from "./config-error.ts";
import { makePrivateDir } from "./private-dir.ts";

export class DataDirInUse extends DatabaseConfigError {
  override name = "DataDirInUse";
}

const LOCK_FILE = "dms.lock";

export interface DataDirLockOptions {
  /**
   * The lock file in the directory: `dms.lock` (the embedded database's) by default. Locks under
   * different names are independent (`npm start` holds `dms-start.lock` for the whole stack, and its
   * embedded database `dms.lock` as any opener does).
   */
  file?: string;
  /** The refusal's line, given the holder ("process 1234", or "another process"). */
  inUse?: (holder: string) => string;
}

/**
 * PGlite does not guard its files against a second process, and two writers would corrupt them; so
 * one opener at a time holds the data directory, by an exclusive advisory lock (flock(2)) on
 * `<dir>/dms.lock` (or `options.file`). The operating system drops that lock when the holder's process ends, however it
 * ends (SIGKILL, OOM), so nothing stale is ever left to take over, and a recycled pid cannot fool
 * it. The file also carries the holder's pid, only to name it in the refusal.
 *
 * Returns the release. Throws DataDirInUse (one line) while another opener holds it, also one in
 * this very process; a DatabaseConfigError when the flock command is missing.
 */
export async function lockDataDir(dir: string, options: DataDirLockOptions = {}): Promise<() => Promise<void>> {
  await makePrivateDir(dir); // a directory made here is the owner's only (0700)
  const path = join(dir, options.file ?? LOCK_FILE);
  const inUse = options.inUse ??
    ((holder: string) => `the embedded database in ${dir} is in use by ${holder} (npm start?); stop it first, or set DATABASE_URL`);
  // "a+" creates the file without truncating the pid of a holder; the lock lives on this open file
  // (not on the path), so the file is never removed: a remover could unlink it under a new holder.
  const file = await open(path, "a+", 0o600);
  try {
    if (!(await flockNonBlocking(file.fd, path, options.file === undefined))) {
      const holder = (await readFile(path, "utf8").catch(() => "")).trim();
      throw new DataDirInUse(inUse(/^\d+$/.test(holder) ? `process ${holder}` : "another process"));
    }
    await writeFile(path, String(process.pid));
  } catch (error) {
    await file.close();
    throw error;
  }
  return async () => {
    await writeFile(path, "").catch(() => {}); // while still locked: no new holder's pid is erased
    await file.close(); // the last descriptor of the lock: released
  };
}

/**
 * flock(LOCK_EX | LOCK_NB) on our open file `fd`. Node has no flock, nor has Deno's node:fs; Deno's
 * own Deno.FsFile.tryLock is the same flock, but shared code may not touch Deno.*, and the tests
 * open PGlite in Node too. So the flock(1) command (util-linux; BusyBox's takes the same options)
 * takes the lock on the descriptor we hand it as its fd 3, and exits: the lock belongs to the open
 * file, which we keep, so it is ours until we close it or die. One way for Deno and Node alike, at
 * the cost of a process started per open (milliseconds). Resolves false when another open file
 * holds the lock.
 */
function flockNonBlocking(fd: number, path: string, embedded: boolean): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn("flock", ["-x", "-n", "3"], { stdio: ["ignore", "ignore", "pipe", fd] });
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    child.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new DatabaseConfigError(
            `${path} cannot be locked: the flock command is not installed ` +
              `(util-linux; on macOS: brew install flock); install it${embedded ? ", or set DATABASE_URL" : ""}`,
          )
          : error,
      ));
    // 1 is flock(1)'s "already locked" under -n; other codes are its usage and system errors.
    child.once("close", (code) => {
      if (code === 0 || code === 1) resolve(code === 0);
      else reject(new Error(`flock failed on ${path}: ${stderr.trim() || `exit code ${code}`}`));
    });
  });
}
