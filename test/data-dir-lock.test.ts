import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirInUse, lockDataDir } from "../shared/db/data-dir-lock.ts";
import { openPglite } from "../shared/db/pglite.ts";

let root: string;
beforeAll(async () => (root = await mkdtemp(join(tmpdir(), "dms-lock-"))));
afterAll(() => rm(root, { recursive: true, force: true }));

describe("the embedded database's data directory", () => {
  it("is held by one opener at a time, and free again once closed", async () => {
    const dir = join(root, "one-at-a-time");
    const db = await openPglite(dir);
    await expect(openPglite(dir)).rejects.toThrow(DataDirInUse);
    await expect(openPglite(dir)).rejects.toThrow(`in use by process ${process.pid}`);
    await db.close();
    const again = await openPglite(dir);
    expect(await again.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    await again.close();
  });

  it("takes over a lock left by a process that no longer exists", async () => {
    const dir = join(root, "stale");
    const release = await lockDataDir(dir);
    await release();
    await writeFile(join(dir, "dms.lock"), "2147483646");
    const takeover = await lockDataDir(dir);
    expect(await readFile(join(dir, "dms.lock"), "utf8")).toBe(String(process.pid));
    await takeover();
  });
});
