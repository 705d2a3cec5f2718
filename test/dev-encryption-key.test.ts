import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importFernetKey } from "../shared/crypto/fernet.ts";
import { lockDataDir } from "../shared/db/data-dir-lock.ts";
import { devEncryptionKey, ensureWritableDir } from "../shared/local/data-dir.ts";

let root: string;
beforeAll(async () => (root = await mkdtemp(join(tmpdir(), "dms-dev-key-"))));
afterAll(() => rm(root, { recursive: true, force: true }));

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

/** Runs `body` under `mask` (vitest runs each test file in a process of its own), then restores it. */
async function underUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const before = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(before);
  }
}

describe("npm start's development key", () => {
  it("is made once, readable by its owner only, and the same at every later start", async () => {
    const dir = await mkdtemp(join(root, "once-"));
    const made = await devEncryptionKey(dir);
    expect(made.created).toBe(true);
    await expect(importFernetKey(made.key)).resolves.toBeDefined();
    expect((await stat(made.path)).mode & 0o777).toBe(0o600);
    expect(await devEncryptionKey(dir)).toEqual({ ...made, created: false });
    expect(await readdir(dir)).toEqual(["dms-dev-encryption-key"]); // no temporary file left
  });

  // What a process killed between creating the file and writing it used to leave: an empty key,
  // which every later start then refused. Nothing can have been encrypted under it.
  it("replaces an empty key file left by a start that was killed while making it", async () => {
    const dir = await mkdtemp(join(root, "empty-"));
    await writeFile(join(dir, "dms-dev-encryption-key"), "");
    const made = await devEncryptionKey(dir);
    expect(made.created).toBe(true);
    await expect(importFernetKey(made.key)).resolves.toBeDefined();
    expect((await readFile(made.path, "utf8")).trim()).toBe(made.key);
  });
});

// What npm start writes (the embedded database, this key, the emulator's accounts, lock files)
// lives in the data directory: made by us, it is the owner's alone, whatever the umask.
describe("the data directory", () => {
  // 000 would leave mkdir's default 0777 (anyone may write); 277 takes the owner's own write bit,
  // which a mode given only at creation would keep.
  it.each(["000", "022", "277"])("is made 0700, parents included, under the umask %s", async (umask) => {
    const mask = parseInt(umask, 8);
    const parent = await mkdtemp(join(root, "made-"));
    await chmod(parent, 0o755);
    const dir = join(parent, "data", "pglite");
    await underUmask(mask, () => ensureWritableDir(dir));
    expect(await modeOf(join(parent, "data"))).toBe(0o700);
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(parent)).toBe(0o755); // not ours to change
    expect(await readdir(dir)).toEqual([]); // no write probe left
  });

  it("keeps the mode of a directory that was there before", async () => {
    const dir = await mkdtemp(join(root, "theirs-"));
    await chmod(dir, 0o750);
    await ensureWritableDir(dir);
    expect(await modeOf(dir)).toBe(0o750);
  });

  it("is made 0700 by the embedded database's lock too (operator commands open it without npm start)", async () => {
    const dir = join(await mkdtemp(join(root, "lock-")), "pglite");
    const release = await underUmask(0o000, () => lockDataDir(dir));
    try {
      expect(await modeOf(dir)).toBe(0o700);
      expect(await modeOf(join(dir, "dms.lock"))).toBe(0o600);
    } finally {
      await release();
    }
  });

  it("holds a new key file of mode 0600 whatever the umask, and never changes an existing directory's mode", async () => {
    const dir = join(root, "key-umask");
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    for (const mask of [0o000, 0o277]) {
      await rm(join(dir, "dms-dev-encryption-key"), { force: true });
      const made = await underUmask(mask, () => devEncryptionKey(dir));
      expect(made.created).toBe(true);
      expect(await modeOf(made.path), `umask ${mask.toString(8)}`).toBe(0o600);
    }
    expect(await modeOf(dir)).toBe(0o755);
  });
});
