import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateKey } from "../crypto/fernet.ts";
import { LocalStackError } from "./errors.ts";

/** Creates the data directory when missing, and proves it can be written. */
export async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const probe = join(dir, ".dms-write-probe");
    await writeFile(probe, "");
    await rm(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new LocalStackError(`the data directory ${dir} (DMS_DATA_DIR) is not writable (${code}); choose another with DMS_DATA_DIR`);
  }
}

const DEV_KEY_FILE = "dms-dev-encryption-key";

/**
 * The development ENCRYPTION_KEY, made once and kept in the data directory so that tokens stored
 * by one `npm start` still decrypt in the next.
 */
export async function devEncryptionKey(dir: string): Promise<{ key: string; path: string; created: boolean }> {
  const path = join(dir, DEV_KEY_FILE);
  try {
    return { key: (await readFile(path, "utf8")).trim(), path, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const key = generateKey();
  await writeFile(path, `${key}\n`, { mode: 0o600, flag: "wx" });
  return { key, path, created: true };
}
