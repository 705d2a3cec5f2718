import { chmod, mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/**
 * Creates `dir` and any missing parents with mode 0700 (owner only): the data directory holds the
 * embedded database, the development ENCRYPTION_KEY and the emulator's accounts, none of them for
 * other users of the machine. The mode given to mkdir is masked by the umask, which only takes bits
 * away, but may take the owner's too (a umask of 0277 gives 0500, where the next level could not be
 * made): so each directory is set to 0700 outright as soon as it is made, one level at a time.
 * Directories that already exist, or that another process makes meanwhile, keep their mode: it is
 * their owner's choice. Throws stat's, mkdir's and chmod's errors (EACCES, ENOTDIR, ...).
 */
export async function makePrivateDir(dir: string): Promise<void> {
  const missing: string[] = [];
  // The root always exists, so the walk up ends.
  for (let at = resolve(dir); !(await exists(at)); at = dirname(at)) missing.unshift(at);
  for (const at of missing) {
    try {
      await mkdir(at, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") continue; // made by another process
      throw error;
    }
    await chmod(at, 0o700);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}
