import { randomUUID } from "node:crypto";
import { chmod, link, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateKey } from "../crypto/fernet.ts";
import { makePrivateDir } from "../db/private-dir.ts";
import { LocalStackError } from "./errors.ts";

/**
 * Creates the data directory when missing, owner only (0700, as makePrivateDir does; an existing
 * one keeps its mode), and proves it can be written. Throws LocalStackError naming the directory.
 */
export async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await makePrivateDir(dir);
    // A name of its own: two starts probing at once must not remove each other's probe.
    const probe = join(dir, `.dms-write-probe.${randomUUID()}`);
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
 * by one `npm start` still decrypt in the next. Returns the key (Fernet, url-safe base64), the
 * file's path, and whether it was made now. A key made here is in a file of mode 0600 (owner only),
 * whatever the umask; an existing file is read as it is.
 */
export async function devEncryptionKey(dir: string): Promise<{ key: string; path: string; created: boolean }> {
  const path = join(dir, DEV_KEY_FILE);
  const existing = await readKey(path);
  if (existing) return { key: existing, path, created: false };
  // Written whole under a name of its own, then put in place in one step: a process killed
  // half-way leaves no empty or partial key behind (older versions could leave an empty file,
  // which is replaced: nothing was ever encrypted under it).
  const key = generateKey();
  const temp = `${path}.${randomUUID()}.tmp`;
  await writeFile(temp, `${key}\n`, { mode: 0o600 });
  try {
    // The mode at creation is masked by the umask (0277 would leave 0400): set it outright.
    await chmod(temp, 0o600);
    if (existing === "") {
      await rename(temp, path);
    } else {
      await link(temp, path);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    // Another process made it meanwhile: its key is the one.
    const theirs = await readKey(path);
    if (!theirs) throw error;
    return { key: theirs, path, created: false };
  } finally {
    await rm(temp, { force: true });
  }
  return { key, path, created: true };
}

/** The key in the file; "" when the file is empty; null when there is no file. */
async function readKey(path: string): Promise<string | null> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}
