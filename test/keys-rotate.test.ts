import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { decrypt, encrypt, extractTimestamp, generateKey, importFernetKey, keyId } from "../shared/crypto/fernet.ts";
import type { FernetKey } from "../shared/crypto/fernet.ts";
import { loadKeyRing } from "../shared/crypto/key-ring.ts";
import type { Queryable } from "../shared/db/database.ts";
import { migratedPglite, migratedPostgres } from "./support/databases.ts";
import type { TestDatabase } from "./support/databases.ts";
import { closedPort } from "./support/fake-postgres.ts";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, npmRun, run } from "./support/run.ts";
import type { RunResult } from "./support/run.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";
import { insertTokenRows, tokenRows } from "./support/token-rows.ts";
import { pythonFixtures as fixtures } from "./support/python-fixtures.ts";
import { rotateTokens } from "../shared/tools/keys-rotate.ts";

// The primary, two keys it replaced, and one the ring has never seen.
const KEYS = { primary: fixtures.keys.primary, oldA: fixtures.keys.previous, oldB: fixtures.keys.other, unknown: generateKey() };
const primary = await importFernetKey(KEYS.primary);
const oldA = await importFernetKey(KEYS.oldA);
const oldB = await importFernetKey(KEYS.oldB);
const unknown = await importFernetKey(KEYS.unknown);
const ENV = { ENCRYPTION_KEY: KEYS.primary, PREVIOUS_ENCRYPTION_KEYS: `${KEYS.oldB}, ${KEYS.oldA}` };
const ring = await loadKeyRing(ENV);

/** What a seeded token must still decrypt to (base64), and when it was first encrypted. */
interface Expected {
  plaintext: string;
  time: number;
  token: string;
}

interface SeededRow {
  id: number;
  access: Expected;
  refresh: Expected;
}

let serial = 0;
async function token(key: FernetKey, plaintext = `dexcom-token-${++serial}-${Math.random()}`): Promise<Expected> {
  const time = 1_700_000_000 + serial;
  const bytes = new TextEncoder().encode(plaintext);
  return { plaintext: Buffer.from(bytes).toString("base64"), time, token: await encrypt(key, bytes, { now: time }) };
}

function pythonToken(name: string): Expected {
  const fixture = fixtures.tokens.find((t) => t.name === name)!;
  return { plaintext: fixture.plaintext_b64, time: fixture.time, token: fixture.token };
}

const pythonOldToken: Expected = {
  plaintext: fixtures.multi_fernet.plaintext_b64,
  time: fixtures.multi_fernet.old_timestamp,
  token: fixtures.multi_fernet.old_token,
};

async function seed(test: TestDatabase, pairs: { access: Expected; refresh: Expected; keyId: string | null }[]) {
  const ids = await insertTokenRows(
    test.db,
    pairs.map((pair) => ({ access: pair.access.token, refresh: pair.refresh.token, keyId: pair.keyId })),
  );
  return pairs.map((pair, index): SeededRow => ({ id: ids[index]!, access: pair.access, refresh: pair.refresh }));
}

function rowsUnder(key: FernetKey, n: number, stored: string | null) {
  return Promise.all(
    Array.from({ length: n }, async () => ({ access: await token(key), refresh: await token(key), keyId: stored })),
  );
}

// Rows under two old keys, rows the Python backend left without a key id (under an old key and
// under the primary), rows already done, one mixed row, and one row under a key the ring lacks.
async function seedMixedTable(test: TestDatabase) {
  const rotatable = await seed(test, [
    ...(await rowsUnder(oldA, 4, keyId(oldA))),
    ...(await rowsUnder(oldB, 4, keyId(oldB))),
    ...(await rowsUnder(oldA, 2, null)),
    { access: pythonOldToken, refresh: await token(oldA), keyId: null },
    { access: await token(primary), refresh: await token(oldB), keyId: null },
  ]);
  const current = await seed(test, [
    { access: pythonToken("ascii"), refresh: pythonToken("utf8"), keyId: null },
    { access: pythonToken("empty"), refresh: pythonToken("8 KiB"), keyId: null },
  ]);
  const done = await seed(test, await rowsUnder(primary, 2, keyId(primary)));
  const [lost] = await seed(test, await rowsUnder(unknown, 1, keyId(unknown)));
  return { rotatable, current, done, lost: lost! };
}

function rowsById(rows: Awaited<ReturnType<typeof tokenRows>>) {
  return new Map(rows.map((row) => [row.id, row]));
}

async function expectUnderPrimary(stored: { access_token_encrypted: string; refresh_token_encrypted: string }, row: SeededRow) {
  for (const [token, expected] of [
    [stored.access_token_encrypted, row.access],
    [stored.refresh_token_encrypted, row.refresh],
  ] as const) {
    expect(Buffer.from(await decrypt(primary, token)).toString("base64")).toBe(expected.plaintext);
    expect(await extractTimestamp(primary, token)).toBe(expected.time);
  }
}

function expectNoSecrets(result: RunResult, seeded: SeededRow[]) {
  const output = result.stdout + result.stderr;
  for (const key of Object.values(KEYS)) expect(output).not.toContain(key);
  for (const row of seeded) {
    for (const expected of [row.access, row.refresh]) {
      expect(output).not.toContain(expected.token);
      if (expected.plaintext.length >= 8) expect(output).not.toContain(Buffer.from(expected.plaintext, "base64").toString());
    }
  }
}

async function withDatabase(fn: (test: TestDatabase) => Promise<void>) {
  const test = await migratedPostgres();
  try {
    await fn(test);
  } finally {
    await test.drop();
  }
}

const rotate = (test: TestDatabase, args: string[] = []) => npmRun("keys:rotate", args, { ...ENV, DATABASE_URL: test.url });

describe("npm run keys:rotate", () => {
  it("moves every decryptable token onto the primary key, leaves the rest alone and says which", async () => {
    await withDatabase(async (test) => {
      const { rotatable, current, done, lost } = await seedMixedTable(test);
      const before = rowsById(await tokenRows(test.db));

      const result = await rotate(test);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stdout).toContain(`keys:rotate: primary key ${keyId(primary)} (ENCRYPTION_KEY), 2 previous keys\n`);
      expect(result.stdout).toContain("\nrotated: 12\n");
      expect(result.stdout).toContain("\nalready current: 2\n");
      expect(result.stdout).toMatch(new RegExp(`\\nundecryptable: 1 \\(ids ${lost.id}\\): under no key of the ring, left untouched`));
      expect(result.stdout).toContain("\nbusy: 0\n");
      expectNoSecrets(result, [...rotatable, ...current, ...done, lost]);

      const after = rowsById(await tokenRows(test.db));
      for (const row of [...rotatable, ...current, ...done]) {
        expect(after.get(row.id)!.encryption_key_id).toBe(keyId(primary));
        await expectUnderPrimary(after.get(row.id)!, row);
      }
      // Tokens already under the primary key keep their ciphertext: only the key id is recorded.
      for (const row of current) {
        expect(after.get(row.id)!.access_token_encrypted).toBe(row.access.token);
        expect(after.get(row.id)!.refresh_token_encrypted).toBe(row.refresh.token);
      }
      for (const row of [...done, lost]) expect(after.get(row.id)!.text).toBe(before.get(row.id)!.text);

      // A second run finds nothing left to do and changes nothing; only the lost row keeps it failing.
      const again = await rotate(test);
      expect(again.code).toBe(1);
      expect(again.stdout).toContain("\nrotated: 0\nalready current: 0\n");
      expect(again.stdout).toContain(`undecryptable: 1 (ids ${lost.id})`);
      expect(await tokenRows(test.db)).toEqual([...after.values()]);
    });
  }, 60_000);

  it("--dry-run writes nothing and tells what a run would do", async () => {
    await withDatabase(async (test) => {
      const { lost } = await seedMixedTable(test);
      const before = await tokenRows(test.db);

      const result = await rotate(test, ["--dry-run", "--batch-size", "3"]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain("dry run: nothing is written");
      expect(result.stdout).toContain("\nwould rotate: 12\nalready current: 2\n");
      expect(result.stdout).toContain(`undecryptable: 1 (ids ${lost.id}): under no key of the ring, would be left untouched`);
      expect(await tokenRows(test.db)).toEqual(before);
    });
  }, 60_000);

  it("takes keys spelled as Python's Fernet takes them (openssl rand -base64 32), under the same ids", async () => {
    await withDatabase(async (test) => {
      const rows = await seed(test, [...(await rowsUnder(oldA, 2, keyId(oldA))), ...(await rowsUnder(oldB, 1, null))]);
      const standard = (key: string) => key.replace(/-/g, "+").replace(/_/g, "/");
      expect(standard(KEYS.primary)).not.toBe(KEYS.primary);
      const result = await npmRun("keys:rotate", [], {
        DATABASE_URL: test.url,
        ENCRYPTION_KEY: `"${standard(KEYS.primary)}"\n`,
        PREVIOUS_ENCRYPTION_KEYS: `${standard(KEYS.oldB)},${KEYS.oldA.slice(0, 22)}\n${KEYS.oldA.slice(22)}`,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`keys:rotate: primary key ${keyId(primary)} (ENCRYPTION_KEY), 2 previous keys\n`);
      expect(result.stdout).toContain("\nrotated: 3\n");
      const after = rowsById(await tokenRows(test.db));
      for (const row of rows) {
        expect(after.get(row.id)!.encryption_key_id).toBe(keyId(primary));
        await expectUnderPrimary(after.get(row.id)!, row);
      }
    });
  }, 60_000);

  it("exits 0 when every row ends up under the primary key", async () => {
    await withDatabase(async (test) => {
      await seed(test, [{ access: await token(oldA), refresh: await token(oldA), keyId: keyId(oldA) }]);
      const result = await rotate(test);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain("\nrotated: 1\nalready current: 0\nundecryptable: 0\nbusy: 0\n");
      expect(result.stderr).toBe("progress: 1/1 (100%)\n");
    });
  }, 60_000);

  it("finishes the job when run again after being killed half-way", async () => {
    await withDatabase(async (test) => {
      const rows = await seed(
        test,
        await Promise.all(Array.from({ length: 3000 }, async (_, i) => ({
          access: await token(i % 2 ? oldA : oldB),
          refresh: await token(i % 2 ? oldA : oldB),
          keyId: i % 3 ? keyId(i % 2 ? oldA : oldB) : null,
        }))),
      );
      const countDone = async () =>
        (await test.db.query<{ n: number }>("SELECT count(*)::int AS n FROM dexcom_tokens WHERE encryption_key_id = $1", [
          keyId(primary),
        ]))[0]!.n;

      // The deno process itself, so that the kill does not stop at npm.
      const child = spawn(
        "node_modules/.bin/deno",
        ["run", "-A", "--quiet", "scripts/keys-rotate.ts", "--batch-size", "50"],
        { cwd: REPO_ROOT, env: cleanEnv({ ...ENV, DATABASE_URL: test.url }) },
      );
      const killed = new Promise<string | null>((resolve) => child.on("close", (_code, signal) => resolve(signal)));
      child.stderr.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("progress:")) child.kill("SIGKILL");
      });
      expect(await killed).toBe("SIGKILL");
      const halfway = await countDone();
      expect(halfway).toBeGreaterThanOrEqual(50);
      expect(halfway).toBeLessThan(3000);

      const result = await rotate(test);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`\nrotated: ${(3000 - halfway).toLocaleString("en-US")}\n`);
      const after = rowsById(await tokenRows(test.db));
      for (const row of rows) {
        expect(after.get(row.id)!.encryption_key_id).toBe(keyId(primary));
        await expectUnderPrimary(after.get(row.id)!, row);
      }
    });
  }, 180_000);

  it("loses no update that live traffic makes while it runs", async () => {
    await withDatabase(async (test) => {
      const rows = await seed(
        test,
        await rowsUnder(oldA, 1200, keyId(oldA)),
      );
      const latest = new Map(rows.map((row) => [row.id, row.access.plaintext]));
      const increments = new Map(rows.map((row) => [row.id, 0]));
      let running = true;

      // Each writer owns its share of the rows, so the order of its writes is the order they commit.
      // Writer 0 holds its row lock a while, as a request refreshing a token does, to make the
      // rotation meet locked rows.
      const writer = async (share: number) => {
        const mine = rows.filter((_, index) => index % 3 === share);
        while (running) {
          const row = mine[Math.floor(Math.random() * mine.length)]!;
          const plaintext = `refreshed-${row.id}-${Math.random()}`;
          const [access, refresh] = await Promise.all([encrypt(primary, plaintext), encrypt(primary, `r-${plaintext}`)]);
          const update = async (tx: Queryable) => {
            await tx.query(
              `UPDATE dexcom_tokens
                  SET access_token_encrypted = $2, refresh_token_encrypted = $3, encryption_key_id = $4,
                      expires_in = expires_in + 1
                WHERE id = $1`,
              [row.id, access, refresh, keyId(primary)],
            );
          };
          if (share === 0) {
            await test.db.transaction(async (tx) => {
              await tx.query("SELECT 1 FROM dexcom_tokens WHERE id = $1 FOR UPDATE", [row.id]);
              await tx.query("SELECT pg_sleep(0.005)");
              await update(tx);
            });
          } else {
            await update(test.db);
          }
          latest.set(row.id, Buffer.from(plaintext).toString("base64"));
          increments.set(row.id, increments.get(row.id)! + 1);
        }
      };
      const writers = [0, 1, 2].map(writer);
      const total = () => [...increments.values()].reduce((a, b) => a + b, 0);
      while (total() < 30) await new Promise((resolve) => setTimeout(resolve, 10));

      const before = total();
      const result = await rotate(test, ["--batch-size", "20"]);
      const during = total() - before;
      running = false;
      await Promise.all(writers);

      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain("busy: 0");
      expect(during).toBeGreaterThan(20);
      for (const stored of await tokenRows(test.db)) {
        expect(stored.encryption_key_id).toBe(keyId(primary));
        expect(Buffer.from(await decrypt(primary, stored.access_token_encrypted)).toString("base64")).toBe(latest.get(stored.id));
        expect(stored.expires_in).toBe(7200 + increments.get(stored.id)!);
      }
    });
  }, 180_000);

  // npm takes every `--flag` before `--` for itself and hands it to the script only as
  // npm_config_<flag>; an .npmrc or an NPM_CONFIG_* variable arrives the same way. A swallowed
  // --dry-run must never rotate.
  describe("flags npm takes for itself (no `--`)", () => {
    // `npm run -s keys:rotate <args>`, exactly as typed: no `--` added.
    const npmTyped = (test: TestDatabase, args: string[], env: Record<string, string> = {}) =>
      run("npm", ["run", "-s", "keys:rotate", ...args], { ...ENV, DATABASE_URL: test.url, ...env });

    async function expectDryRun(args: string[], env: Record<string, string>, via: string) {
      await withDatabase(async (test) => {
        await seed(test, await rowsUnder(oldA, 4, keyId(oldA)));
        const before = await tokenRows(test.db);
        const result = await npmTyped(test, args, env);
        expect(await tokenRows(test.db), "rows rotated").toEqual(before);
        expect(result.code, result.stderr).toBe(0);
        expect(result.stdout).toContain(`dry run: nothing is written; from npm's configuration: ${via}\n`);
        expect(result.stdout).toContain("\nwould rotate: 4\n");
      });
    }

    it("npm run keys:rotate --dry-run is a dry run: nothing is rotated", async () => {
      await expectDryRun(["--dry-run"], {}, "npm_config_dry_run");
    }, 60_000);

    it("so is dry-run set in a user's .npmrc, or in NPM_CONFIG_DRY_RUN", async () => {
      const dir = await mkdtemp(join(tmpdir(), "dms-npmrc-"));
      try {
        await writeFile(join(dir, "npmrc"), "dry-run=true\n");
        await expectDryRun([], { npm_config_userconfig: join(dir, "npmrc") }, "npm_config_dry_run");
      } finally {
        await rm(dir, { recursive: true });
      }
      await expectDryRun([], { NPM_CONFIG_DRY_RUN: "true" }, "NPM_CONFIG_DRY_RUN");
    }, 60_000);

    it("takes --batch-size=N from npm too, and rotates for real only without a dry run anywhere", async () => {
      await withDatabase(async (test) => {
        await seed(test, await rowsUnder(oldA, 5, keyId(oldA)));
        const dry = await npmTyped(test, ["--dry-run", "--batch-size=2"]);
        expect((await tokenRows(test.db)).map((row) => row.encryption_key_id), "rows rotated").toEqual(Array(5).fill(keyId(oldA)));
        expect(dry.code, dry.stderr).toBe(0);
        expect(dry.stdout).toContain("from npm's configuration: npm_config_dry_run, npm_config_batch_size\n");
        // The first batch shows at once: two rows, not the default 500.
        expect(dry.stderr).toMatch(/^progress: 2\/5 \(40%\)\n/);

        const real = await npmTyped(test, ["--dry-run=false", "--batch-size=2"]);
        expect(real.code, real.stderr).toBe(0);
        expect(real.stdout).toContain("\nrotated: 5\n");
        expect((await tokenRows(test.db)).map((row) => row.encryption_key_id)).toEqual(Array(5).fill(keyId(primary)));
      });
    }, 60_000);

    it.each([
      [["--batch-size", "5"], /^keys:rotate: npm took --batch-size for itself and passed its value on as a separate argument: put the command's flags after `--` \(usage: npm run keys:rotate -- \[--dry-run\] \[--batch-size N\]\)$/],
      [["--dry-run", "--", "--batch-size", "5", "x"], /^keys:rotate: unknown argument "x" \(usage: /],
      [["--dry-run=no"], /^keys:rotate: unknown argument "no" \(usage: /],
      [["--batch-size=3", "--", "--batch-size", "4"], /^keys:rotate: --batch-size is given twice, differently: to npm \(npm_config_batch_size\) and after -- \(usage: /],
      // Typos npm keeps for itself: without this refusal, a real rotation.
      [["--dryrun"], /^keys:rotate: npm took --dryrun for itself \(npm_config_dryrun\); did you mean --dry-run\? put the command's flags after `--` \(usage: npm run keys:rotate -- \[--dry-run\] \[--batch-size N\]\)$/],
      // (`--dry` npm itself expands to its --dry-run: a dry run.)
      [["--dry-run-only"], /^keys:rotate: npm took --dry-run-only for itself \(npm_config_dry_run_only\); did you mean --dry-run\? /],
      [["--batchsize=1"], /^keys:rotate: npm took --batchsize for itself \(npm_config_batchsize\); did you mean --batch-size\? /],
    ])("refuses %j in one line and touches nothing", async (args, pattern) => {
      await withDatabase(async (test) => {
        await seed(test, await rowsUnder(oldA, 2, keyId(oldA)));
        const before = await tokenRows(test.db);
        const result = await npmTyped(test, args);
        expect(await tokenRows(test.db), "rows rotated").toEqual(before);
        expect(result.code).toBe(2);
        expect(result.stdout).toBe("");
        expect(result.stderr.trim().split("\n")).toHaveLength(1);
        expect(result.stderr.trim()).toMatch(pattern);
      });
    }, 60_000);
  });

  describe("says in one line what is wrong", () => {
    const oneLine = (result: RunResult, code: number, pattern: RegExp) => {
      expect(result.code).toBe(code);
      expect(result.stdout).toBe("");
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(pattern);
      for (const key of Object.values(KEYS)) expect(result.stderr).not.toContain(key);
    };

    it.each([
      [["--batch-size", "0"], /^keys:rotate: --batch-size takes a whole number from 1 to 10000 \(usage: /],
      [["--batch-size=abc"], /^keys:rotate: --batch-size takes a whole number/],
      [["--batch-size"], /^keys:rotate: --batch-size takes a whole number/],
      [["--force"], /^keys:rotate: unknown argument "--force" \(usage: npm run keys:rotate -- \[--dry-run\] \[--batch-size N\]\)/],
    ])("refuses %j", async (args, pattern) => {
      oneLine(await npmRun("keys:rotate", args, { ...ENV, DATABASE_URL: "postgresql://postgres@127.0.0.1:1/x" }), 2, pattern);
    });

    it("without ENCRYPTION_KEY", async () => {
      const result = await npmRun("keys:rotate", [], { DATABASE_URL: "postgresql://postgres@127.0.0.1:1/x" });
      oneLine(result, 1, /^keys:rotate failed: ENCRYPTION_KEY is not set$/m);
    });

    it("with a bad previous key, without the key", async () => {
      const bad = `${KEYS.oldA.slice(0, -4)}`;
      const result = await npmRun("keys:rotate", [], {
        ENCRYPTION_KEY: KEYS.primary,
        PREVIOUS_ENCRYPTION_KEYS: `${KEYS.oldB},${bad}`,
      });
      oneLine(result, 1, /^keys:rotate failed: PREVIOUS_ENCRYPTION_KEYS entry 2 is not a valid Fernet key/);
      expect(result.stderr).not.toContain(bad);
    });

    it("on a data directory that holds no database, writing nothing there", async () => {
      const dir = await mkdtemp(join(tmpdir(), "dms-no-database-"));
      try {
        await writeFile(join(dir, "notes.txt"), "not a database\n");
        oneLine(await npmRun("keys:rotate", [], { ...ENV, DMS_DATA_DIR: dir }), 1, /^keys:rotate failed: no embedded database in .* yet/);
        expect(await readdir(dir)).toEqual(["notes.txt"]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("when the database is down", async () => {
      const port = await closedPort();
      oneLine(
        await npmRun("keys:rotate", [], { ...ENV, DATABASE_URL: `postgresql://postgres:pw-secret@127.0.0.1:${port}/postgres` }),
        1,
        /^keys:rotate failed: cannot connect to postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres: connection refused/,
      );
    });
  });
});

describe("rotateTokens", () => {
  it("reports rows live traffic keeps locked as busy, and a later run takes them", async () => {
    await withDatabase(async (test) => {
      const rows = await seed(
        test,
        await rowsUnder(oldA, 25, keyId(oldA)),
      );
      const held = rows[7]!;
      let release!: () => void;
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const holder = test.db.transaction(async (tx) => {
        await tx.query("SELECT 1 FROM dexcom_tokens WHERE id = $1 FOR UPDATE", [held.id]);
        locked();
        await new Promise<void>((resolve) => (release = resolve));
      });
      await isLocked;

      const progress: number[] = [];
      const first = await rotateTokens(test.db, ring, { batchSize: 10, dryRun: false, onProgress: (p) => progress.push(p.done) });
      expect(first).toEqual({ rotated: 24, alreadyCurrent: 0, undecryptable: [], busy: 1 });
      expect(progress).toEqual([10, 20, 24]);

      release();
      await holder;
      expect(await rotateTokens(test.db, ring, { batchSize: 10, dryRun: false })).toEqual({
        rotated: 1,
        alreadyCurrent: 0,
        undecryptable: [],
        busy: 0,
      });
      const after = rowsById(await tokenRows(test.db));
      for (const row of rows) await expectUnderPrimary(after.get(row.id)!, row);
    });
  }, 60_000);

  it("runs on the embedded database too", async () => {
    const db = await migratedPglite();
    try {
      const rows = [
        { access: await token(oldB), refresh: await token(oldA), keyId: null },
        { access: await token(unknown), refresh: await token(unknown), keyId: null },
        { access: pythonToken("ascii"), refresh: pythonToken("utf8"), keyId: null },
      ];
      const ids = await insertTokenRows(
        db,
        rows.map((row) => ({ access: row.access.token, refresh: row.refresh.token, keyId: row.keyId })),
      );
      expect(await rotateTokens(db, ring, { batchSize: 2, dryRun: false })).toEqual({
        rotated: 1,
        alreadyCurrent: 1,
        undecryptable: [ids[1]],
        busy: 0,
      });
      const after = rowsById(await tokenRows(db));
      await expectUnderPrimary(after.get(ids[0]!)!, { id: ids[0]!, ...rows[0]! });
      expect(after.get(ids[1]!)!.encryption_key_id).toBeNull();
      expect(after.get(ids[2]!)!.encryption_key_id).toBe(keyId(primary));
    } finally {
      await db.close();
    }
  }, 60_000);
});
