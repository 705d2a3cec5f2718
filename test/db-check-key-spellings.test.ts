// db:check reads ENCRYPTION_KEY and PREVIOUS_ENCRYPTION_KEYS as Python's Fernet does (contract,
// section 1): a key made with `openssl rand -base64 32` (standard alphabet), quoted or wrapped, is
// the same key, under the same id, as its url-safe spelling.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encrypt, importFernetKey, keyId } from "../shared/crypto/fernet.ts";
import { migratedPostgres } from "./support/databases.ts";
import type { TestDatabase } from "./support/databases.ts";
import { npmRun } from "./support/run.ts";
import { insertTokenRows } from "./support/token-rows.ts";
import { pythonFixtures as fixtures } from "./support/python-fixtures.ts";

const primary = await importFernetKey(fixtures.keys.primary);
// Both url-safe characters, so the standard spelling differs everywhere it can.
const spikyText = `${Buffer.alloc(32, 0xfb).toString("base64url")}=`;
const spiky = await importFernetKey(spikyText);
const standard = (key: string) => key.replace(/-/g, "+").replace(/_/g, "/");

describe("npm run db:check with keys in another spelling", () => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await migratedPostgres();
    await insertTokenRows(test.db, [
      { access: await encrypt(primary, "a"), refresh: await encrypt(primary, "r"), keyId: keyId(primary) },
      { access: await encrypt(spiky, "a"), refresh: await encrypt(spiky, "r"), keyId: null },
    ]);
  });
  afterAll(() => test.drop());

  it("matches the rows to the keys by their ids, whatever the spelling", async () => {
    expect(standard(fixtures.keys.primary)).not.toBe(fixtures.keys.primary);
    const env = {
      DATABASE_URL: test.url,
      ENCRYPTION_KEY: standard(fixtures.keys.primary),
      PREVIOUS_ENCRYPTION_KEYS: `'${standard(spikyText)}'`,
    };
    const result = await npmRun("db:check", [], env);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^  ${keyId(primary)}  ENCRYPTION_KEY +1$`, "m"));
    expect(result.stdout).toMatch(new RegExp(`^  ${keyId(spiky)}  PREVIOUS_ENCRYPTION_KEYS 1 +1$`, "m"));
    expect(result.stdout).toMatch(/^ {2}under no key of the ring +0$/m);
    for (const key of [env.ENCRYPTION_KEY, standard(spikyText)]) expect(result.stdout).not.toContain(key);
  });

  it("still refuses a key without its padding, naming the variable only", async () => {
    const text = standard(fixtures.keys.primary).slice(0, -1);
    const result = await npmRun("db:check", [], { DATABASE_URL: test.url, ENCRYPTION_KEY: text });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      "db:check failed: ENCRYPTION_KEY is not a valid Fernet key (32 bytes in padded base64, url-safe or standard alphabet)\n",
    );
  });
});
