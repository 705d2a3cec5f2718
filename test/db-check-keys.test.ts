import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encrypt, generateKey, importFernetKey, keyId } from "../shared/crypto/fernet.ts";
import type { FernetKey } from "../shared/crypto/fernet.ts";
import { migratedPostgres } from "./support/databases.ts";
import type { TestDatabase } from "./support/databases.ts";
import { npmRun } from "./support/run.ts";
import { insertTokenRows } from "./support/token-rows.ts";
import { pythonFixtures as fixtures } from "./support/python-fixtures.ts";

const KEYS = { primary: fixtures.keys.primary, previous: fixtures.keys.previous, unknown: generateKey() };
const primary = await importFernetKey(KEYS.primary);
const previous = await importFernetKey(KEYS.previous);
const unknown = await importFernetKey(KEYS.unknown);
const python = (name: string) => fixtures.tokens.find((t) => t.name === name)!.token;

async function rows(key: FernetKey, n: number, stored: string | null) {
  return Promise.all(
    Array.from({ length: n }, async () => ({
      access: await encrypt(key, "access"),
      refresh: await encrypt(key, "refresh"),
      keyId: stored,
    })),
  );
}

/** A line of the key table: the label, then the count at the end. */
function tableLine(label: string, count: number): RegExp {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^  ${escaped} +${count}$`, "m");
}

describe("npm run db:check, token rows by key", () => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await migratedPostgres();
    await insertTokenRows(test.db, [
      ...(await rows(primary, 3, keyId(primary))),
      ...(await rows(previous, 2, keyId(previous))),
      // Left by the Python backend without a key id: two under the primary, one under the previous
      // key, one under a key nobody configured.
      { access: python("ascii"), refresh: python("utf8"), keyId: null },
      { access: python("empty"), refresh: python("8 KiB"), keyId: null },
      { access: fixtures.multi_fernet.old_token, refresh: "not-even-a-token", keyId: null },
      ...(await rows(unknown, 1, null)),
      ...(await rows(unknown, 1, keyId(unknown))),
    ]);
  });
  afterAll(() => test.drop());

  it("counts rows under each key of the ring, legacy ones by signature, and warns about the rest", async () => {
    const result = await npmRun("db:check", [], {
      DATABASE_URL: test.url,
      ENCRYPTION_KEY: KEYS.primary,
      PREVIOUS_ENCRYPTION_KEYS: ` , ${KEYS.previous}`,
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("\ntoken rows by key:\n");
    expect(result.stdout).toMatch(tableLine(`${keyId(primary)}  ENCRYPTION_KEY`, 5));
    expect(result.stdout).toMatch(tableLine(`${keyId(previous)}  PREVIOUS_ENCRYPTION_KEYS 2`, 3));
    expect(result.stdout).toMatch(tableLine("under no key of the ring", 2));
    expect(result.stdout).toContain("  (4 without a stored key id, matched by signature)\n");
    expect(result.stdout).toMatch(
      /^warning: 2 token rows are under no key of the ring and cannot be decrypted: wrong ENCRYPTION_KEY/m,
    );
    for (const key of Object.values(KEYS)) expect(result.stdout).not.toContain(key);
  });

  it("shows every key of the ring, and no warning when all rows are under one", async () => {
    const empty = await migratedPostgres();
    try {
      await insertTokenRows(empty.db, await rows(primary, 2, keyId(primary)));
      const result = await npmRun("db:check", [], {
        DATABASE_URL: empty.url,
        ENCRYPTION_KEY: KEYS.primary,
        PREVIOUS_ENCRYPTION_KEYS: KEYS.previous,
      });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(tableLine(`${keyId(primary)}  ENCRYPTION_KEY`, 2));
      expect(result.stdout).toMatch(tableLine(`${keyId(previous)}  PREVIOUS_ENCRYPTION_KEYS 1`, 0));
      expect(result.stdout).toMatch(tableLine("under no key of the ring", 0));
      expect(result.stdout).not.toContain("warning");
      expect(result.stdout).not.toContain("matched by signature");
    } finally {
      await empty.drop();
    }
  });

  it("without ENCRYPTION_KEY counts rows by their stored key id and says it matched none", async () => {
    const result = await npmRun("db:check", [], { DATABASE_URL: test.url });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("\ntoken rows by stored key id:\n");
    expect(result.stdout).toMatch(tableLine(keyId(primary), 3));
    expect(result.stdout).toMatch(tableLine(keyId(previous), 2));
    expect(result.stdout).toMatch(tableLine(keyId(unknown), 1));
    expect(result.stdout).toMatch(tableLine("none (written by the Python backend)", 4));
    expect(result.stdout).toMatch(/\nENCRYPTION_KEY not set: rows not matched against a key ring\n$/);
  });

  it.each([
    [
      "ENCRYPTION_KEY",
      { ENCRYPTION_KEY: `${KEYS.primary.slice(0, -8)}` },
      /^db:check failed: ENCRYPTION_KEY is not a valid Fernet key/,
    ],
    [
      "PREVIOUS_ENCRYPTION_KEYS",
      { ENCRYPTION_KEY: KEYS.primary, PREVIOUS_ENCRYPTION_KEYS: `${KEYS.previous},x${KEYS.unknown}` },
      /^db:check failed: PREVIOUS_ENCRYPTION_KEYS entry 2 is not a valid Fernet key/,
    ],
  ])("refuses a bad %s in one line, without the key", async (_name, keys, pattern) => {
    const result = await npmRun("db:check", [], { DATABASE_URL: test.url, ...keys });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(pattern);
    for (const key of [...Object.values(KEYS), ...Object.values(keys)]) expect(result.stderr).not.toContain(key.slice(0, 20));
  });
});
