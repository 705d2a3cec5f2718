import { readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { DatabaseConfigError } from "./config-error.ts";

export class DataDirInUse extends DatabaseConfigError {
  override name = "DataDirInUse";
}

const LOCK_FILE = "dms.lock";

/**
 * PGlite does not guard its files against a second process, and two writers would corrupt them; so
 * one process at a time holds the data directory, by a lock file with its pid. A lock left by a
 * process that died (killed hard) is taken over. Returns the release.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: "wx" });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
      throw new DataDirInUse(
        `the embedded database in ${dir} is in use by process ${holder} (npm start?); stop it first, or set DATABASE_URL`,
      );
    }
    await rm(path, { force: true });
  }
  throw new DataDirInUse(`the embedded database in ${dir} could not be locked`);
}

// A process killed hard can linger as a zombie until its parent reaps it; it holds nothing.
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true; // no /proc: trust kill()
  }
}
