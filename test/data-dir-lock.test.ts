import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirInUse, lockDataDir } from "../shared/db/data-dir-lock.ts";
import { openPglite } from "../shared/db/pglite.ts";
import { holdDataDir } from "./support/lock-holder.ts";

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

  // `npm start` holds the whole data directory (dms-start.lock) and, on the embedded database, the
  // database too (dms.lock): two locks, each refused in its own words.
  it("keeps locks under other file names apart, each with its own refusal", async () => {
    const dir = join(root, "named");
    const named = { file: "dms-start.lock", inUse: (holder: string) => `the data directory is held by ${holder}` };
    const start = await lockDataDir(dir, named);
    await expect(lockDataDir(dir, named)).rejects.toThrow(new DataDirInUse(`the data directory is held by process ${process.pid}`));
    const database = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toThrow(`the embedded database in ${dir} is in use by process ${process.pid}`);
    expect(await readFile(join(dir, "dms-start.lock"), "utf8")).toBe(String(process.pid));
    await start();
    await (await lockDataDir(dir, named))();
    await expect(lockDataDir(dir)).rejects.toThrow(DataDirInUse);
    await database();
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

  // A container restarted after a hard kill gives its new process the pid the file recorded (1,
  // say), so a pid that is alive proves nothing: only the lock held by a live process counts.
  it.each([
    ["pid 1, alive and never ours", "1"],
    ["the pid of this very process, which does not hold it", String(process.pid)],
  ])("is not fooled by a lock file naming %s", async (_name, pid) => {
    const dir = join(root, `reused-pid-${pid}`);
    await (await lockDataDir(dir))();
    await writeFile(join(dir, "dms.lock"), pid);
    const release = await lockDataDir(dir);
    expect(await readFile(join(dir, "dms.lock"), "utf8")).toBe(String(process.pid));
    await release();
  });

  it("is refused while another process holds it, and free once that one is killed with SIGKILL", async () => {
    const dir = join(root, "held-elsewhere");
    const holder = await holdDataDir(dir);
    try {
      await expect(openPglite(dir)).rejects.toThrow(
        `the embedded database in ${dir} is in use by process ${holder.pid} (npm start?); stop it first, or set DATABASE_URL`,
      );
    } finally {
      await holder.kill();
    }
    // The file still names the dead holder; the operating system has dropped its lock.
    expect(await readFile(join(dir, "dms.lock"), "utf8")).toBe(String(holder.pid));
    const db = await openPglite(dir);
    expect(await db.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    await db.close();
  });
});
