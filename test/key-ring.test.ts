import { createHash } from "node:crypto";
import { rejection } from "./support/rejection.ts";
import { decryptInPython, hasPythonCryptography } from "./support/python-fernet.ts";
import { describe, expect, it } from "vitest";
import { decrypt, encrypt, extractTimestamp, importFernetKey, InvalidToken, keyId } from "../shared/crypto/fernet.ts";
import { KeyRing, KeyRingConfigError, loadKeyRing } from "../shared/crypto/key-ring.ts";
import { pythonFixtures } from "./support/python-fixtures.ts";

const { keys, multi_fernet: multi } = pythonFixtures;
const primary = await importFernetKey(keys.primary);
const previous = await importFernetKey(keys.previous);
const other = await importFernetKey(keys.other);
const ring = await loadKeyRing({ ENCRYPTION_KEY: keys.primary, PREVIOUS_ENCRYPTION_KEYS: keys.previous });
const primaryOnly = new KeyRing(primary);
const plaintext = new Uint8Array(Buffer.from(multi.plaintext_b64, "base64"));


describe("key ring", () => {
  it("lists its keys primary first, in the configured order, skipping blank entries", async () => {
    const loaded = await loadKeyRing({
      ENCRYPTION_KEY: ` ${keys.primary}\n`,
      PREVIOUS_ENCRYPTION_KEYS: ` ${keys.previous} , ,${keys.other},`,
    });
    expect(loaded.primaryKeyId).toBe(keyId(primary));
    expect(loaded.keyIds).toEqual([keyId(primary), keyId(previous), keyId(other)]);
    expect((await loadKeyRing({ ENCRYPTION_KEY: keys.primary })).keyIds).toEqual([keyId(primary)]);
  });

  it("takes keys in the standard alphabet too (openssl rand -base64 32), as the same keys with the same ids", async () => {
    const standard = (key: string) => key.replace(/-/g, "+").replace(/_/g, "/");
    const spiky = Buffer.alloc(32, 0xfb).toString("base64url") + "="; // "-_v7-_v7...": both url-safe characters
    const spikyKey = await importFernetKey(spiky);
    expect(standard(keys.primary)).not.toBe(keys.primary);
    expect(standard(spiky)).not.toBe(spiky);
    const loaded = await loadKeyRing({
      ENCRYPTION_KEY: standard(keys.primary),
      PREVIOUS_ENCRYPTION_KEYS: `${standard(spiky)}, ${keys.previous}, "${keys.other}"`,
    });
    expect(loaded.keyIds).toEqual([keyId(primary), keyId(spikyKey), keyId(previous), keyId(other)]);
    expect(await loaded.decryptWithKeyId(multi.old_token)).toEqual({ plaintext, keyId: keyId(previous) });
    expect(await loaded.decryptWithKeyId(await encrypt(spikyKey, plaintext))).toEqual({ plaintext, keyId: keyId(spikyKey) });
    expect(await primaryOnly.decrypt(await loaded.rotate(multi.old_token))).toEqual(plaintext);
  });

  it("encrypts under the primary key", async () => {
    const token = await ring.encrypt("new data");
    expect(new TextDecoder().decode(await decrypt(primary, token))).toBe("new data");
  });

  it("decrypts a Python token made under a previous key, and says which key opened it", async () => {
    expect(await ring.decryptWithKeyId(multi.old_token)).toEqual({ plaintext, keyId: keyId(previous) });
    expect(await ring.decrypt(multi.old_token)).toEqual(plaintext);
    expect(await ring.decryptWithKeyId(multi.rotated)).toEqual({ plaintext, keyId: keyId(primary) });
  });

  it("rejects a token no key in the ring opens, with the usual InvalidToken", async () => {
    const foreign = await encrypt(other, "foreign");
    // One at a time: a promise made before the previous one is awaited could reject unhandled.
    const attempts: ((token: string) => Promise<unknown>)[] = [
      (token) => ring.decrypt(token),
      (token) => ring.decryptWithKeyId(token),
      (token) => ring.rotate(token),
      (token) => ring.extractTimestamp(token),
    ];
    for (const attempt of attempts) {
      const error = await rejection(attempt(foreign));
      expect(error).toBeInstanceOf(InvalidToken);
      expect(error).toMatchObject({ message: "invalid token" });
    }
    await expect(primaryOnly.decrypt(multi.old_token)).rejects.toThrow(new InvalidToken());
  });

  it("tells which key signed a token without decrypting it, and null for a foreign or broken one", async () => {
    expect(await ring.keyIdOf(multi.old_token)).toBe(keyId(previous));
    expect(await ring.keyIdOf(multi.rotated)).toBe(keyId(primary));
    expect(await ring.keyIdOf(await encrypt(other, "foreign"))).toBeNull();
    expect(await ring.keyIdOf("not a token")).toBeNull();
    expect(await ring.keyIdOf(multi.rotated.slice(0, -8) + "AAAAAAA=")).toBeNull();
  });

  it("applies the ttl with every key", async () => {
    const stamped = multi.old_timestamp;
    await expect(ring.decrypt(multi.old_token, { ttl: 10, now: stamped + 10 })).resolves.toEqual(plaintext);
    await expect(ring.decrypt(multi.old_token, { ttl: 10, now: stamped + 11 })).rejects.toThrow(new InvalidToken());
  });

  it("rotates onto the primary key, keeping the original timestamp (as MultiFernet.rotate)", async () => {
    expect(await ring.extractTimestamp(multi.old_token)).toBe(multi.old_timestamp);
    const rotated = await ring.rotate(multi.old_token);
    expect(await extractTimestamp(primary, rotated)).toBe(multi.old_timestamp);
    expect(await primaryOnly.decryptWithKeyId(rotated)).toEqual({ plaintext, keyId: keyId(primary) });
    // Same timestamp and key as Python's rotation; only the random IV differs.
    expect(rotated.slice(0, 12)).toBe(multi.rotated.slice(0, 12));
    expect(multi.rotated_timestamp).toBe(multi.old_timestamp);
    expect(await ring.rotate(rotated)).not.toBe(rotated);
  });

  it.skipIf(!hasPythonCryptography())(
    "rotated tokens decrypt in Python with the primary key alone (skipped when python3 with `cryptography` is not installed)",
    async () => {
      const rotated = await ring.rotate(multi.old_token);
      expect(decryptInPython(keys.primary, [rotated])).toEqual([multi.plaintext_b64]);
    },
  );
});

describe("keyId", () => {
  it("is 16 hex characters, stable across imports and distinct per key", async () => {
    expect(keyId(primary)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyId(await importFernetKey(keys.primary))).toBe(keyId(primary));
    expect(new Set([keyId(primary), keyId(previous), keyId(other)]).size).toBe(3);
  });

  it("is not derived from the key in any way that shows it", () => {
    for (const [text, key] of [[keys.primary, primary], [keys.previous, previous], [keys.other, other]] as const) {
      const raw = Buffer.from(text, "base64url");
      const id = keyId(key);
      expect(text).not.toContain(id);
      expect(raw.toString("hex")).not.toContain(id);
      // Domain-separated: not simply a truncated SHA-256 of the key bytes.
      expect(createHash("sha256").update(raw).digest("hex")).not.toContain(id);
    }
  });
});

describe("loadKeyRing configuration errors", () => {
  const nearlyValid = keys.other.slice(0, 43); // lacks its padding
  const garbage = "this-is-not-a-key-but-might-be-a-secret!!";

  it("names ENCRYPTION_KEY when it is missing or blank", async () => {
    for (const value of [undefined, "", "   "]) {
      const error = await rejection(loadKeyRing({ ENCRYPTION_KEY: value, PREVIOUS_ENCRYPTION_KEYS: keys.previous }));
      expect(error).toBeInstanceOf(KeyRingConfigError);
      expect((error as Error).message).toBe("ENCRYPTION_KEY is not set");
    }
  });

  it("names ENCRYPTION_KEY when it is not a Fernet key, without echoing it", async () => {
    for (const value of [nearlyValid, garbage]) {
      const error = await rejection(loadKeyRing({ ENCRYPTION_KEY: value }));
      expect(error).toBeInstanceOf(KeyRingConfigError);
      expect((error as Error).message).toBe("ENCRYPTION_KEY is not a valid Fernet key (32 bytes in padded base64, url-safe or standard alphabet)");
      expectNoSecret(error, value);
    }
  });

  it("names the position of a bad PREVIOUS_ENCRYPTION_KEYS entry, without echoing it", async () => {
    const error = await rejection(
      loadKeyRing({ ENCRYPTION_KEY: keys.primary, PREVIOUS_ENCRYPTION_KEYS: `${keys.previous}, ${nearlyValid}, ${garbage}` }),
    );
    expect(error).toBeInstanceOf(KeyRingConfigError);
    expect((error as Error).message).toBe(
      "PREVIOUS_ENCRYPTION_KEYS entry 2 is not a valid Fernet key (32 bytes in padded base64, url-safe or standard alphabet)",
    );
    expectNoSecret(error, nearlyValid);
    expectNoSecret(error, garbage);
  });
});

describe("loadKeyRing, a key that goes on after its padding", () => {
  it("is refused with a hint, where Python 3.12 would read the first key and 3.13 refuse", async () => {
    const error = await rejection(
      loadKeyRing({ ENCRYPTION_KEY: keys.primary, PREVIOUS_ENCRYPTION_KEYS: `${keys.previous} ${keys.other}` }),
    );
    expect(error).toBeInstanceOf(KeyRingConfigError);
    expect((error as Error).message).toBe(
      "PREVIOUS_ENCRYPTION_KEYS entry 1 is not a valid Fernet key (32 bytes in padded base64, url-safe or standard alphabet); " +
        "it goes on after its padding: two keys in one variable, or a comment?",
    );
    expectNoSecret(error, keys.previous);
    expectNoSecret(error, keys.other);
  });
});

function expectNoSecret(error: unknown, secret: string): void {
  const shown = `${String(error)}\n${(error as Error).stack ?? ""}\n${JSON.stringify(error)}`;
  expect(shown).not.toContain(secret.slice(0, 8));
  expect((error as Error).message).not.toContain("\n");
  expect((error as Error).cause).toBeUndefined();
}

