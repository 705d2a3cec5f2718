import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importFernetKey } from "../shared/crypto/fernet.ts";
import { devEncryptionKey } from "../shared/local/data-dir.ts";

let root: string;
beforeAll(async () => (root = await mkdtemp(join(tmpdir(), "dms-dev-key-"))));
afterAll(() => rm(root, { recursive: true, force: true }));

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
