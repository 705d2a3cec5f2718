import { rejection } from "./support/rejection.ts";
import { decryptInPython, hasPythonCryptography, readKeysInPython } from "./support/python-fernet.ts";
import { spawnSync } from "node:child_process";
import { createCipheriv, createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  decrypt,
  encrypt,
  extractTimestamp,
  generateKey,
  importFernetKey,
  InvalidFernetKey,
  InvalidToken,
  keyId,
} from "../shared/crypto/fernet.ts";
import type { FernetKey } from "../shared/crypto/fernet.ts";
import { pythonFixtures as fixtures } from "./support/python-fixtures.ts";

const keys = {
  primary: await importFernetKey(fixtures.keys.primary),
  previous: await importFernetKey(fixtures.keys.previous),
  other: await importFernetKey(fixtures.keys.other),
};
const NOW = 1_700_000_000;

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const hex = (text: string) => new Uint8Array(Buffer.from(text, "hex"));
const tokenBytes = (token: string) => new Uint8Array(Buffer.from(token, "base64url"));
const tokenText = (data: Uint8Array) => Buffer.from(data).toString("base64url").padEnd(Math.ceil(data.length / 3) * 4, "=");


describe("tokens made by Python's cryptography", () => {
  for (const c of [...fixtures.tokens, ...fixtures.deterministic]) {
    it(`decrypts ${c.name} to the exact bytes`, async () => {
      expect(await decrypt(keys[c.key], c.token)).toEqual(bytes(c.plaintext_b64));
      expect(await extractTimestamp(keys[c.key], c.token)).toBe(c.time);
    });

    it(`reproduces ${c.name} byte for byte from the same time and IV`, async () => {
      const token = await encrypt(keys[c.key], bytes(c.plaintext_b64), { now: c.time, iv: hex(c.iv_hex) });
      expect(token).toBe(c.token);
    });
  }

  it("encrypts a string as its UTF-8 bytes", async () => {
    const utf8 = fixtures.tokens.find((c) => c.name === "utf8")!;
    const text = new TextDecoder().decode(bytes(utf8.plaintext_b64));
    expect(await encrypt(keys.primary, text, { now: utf8.time, iv: hex(utf8.iv_hex) })).toBe(utf8.token);
  });
});

describe("tokens we make", () => {
  it("round-trip, stamped with the current time and a fresh IV each time", async () => {
    const before = Math.floor(Date.now() / 1000);
    const first = await encrypt(keys.primary, "same plaintext");
    const second = await encrypt(keys.primary, "same plaintext");
    expect(first).not.toBe(second);
    expect(new TextDecoder().decode(await decrypt(keys.primary, first))).toBe("same plaintext");
    const stamped = await extractTimestamp(keys.primary, first);
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it("reject a bad time or IV with a plain argument error", async () => {
    await expect(encrypt(keys.primary, "x", { now: -1 })).rejects.toThrow(RangeError);
    await expect(encrypt(keys.primary, "x", { now: 1.5 })).rejects.toThrow(RangeError);
    await expect(encrypt(keys.primary, "x", { iv: new Uint8Array(15) })).rejects.toThrow(RangeError);
  });

  it.skipIf(!hasPythonCryptography())(
    "decrypt in Python's cryptography (skipped when python3 with `cryptography` is not installed)",
    async () => {
      const plaintexts = [...fixtures.tokens.map((c) => bytes(c.plaintext_b64)), crypto.getRandomValues(new Uint8Array(1000))];
      const tokens = await Promise.all(plaintexts.map((p) => encrypt(keys.primary, p)));
      const decrypted = decryptInPython(fixtures.keys.primary, tokens);
      expect(decrypted.map(bytes)).toEqual(plaintexts);
    },
  );
});

describe("invalid tokens", () => {
  const valid = () => encrypt(keys.primary, "secret", { now: NOW });
  const flipBit = (token: string, index: number) => {
    const data = tokenBytes(token);
    data[index < 0 ? data.length + index : index]! ^= 0x01;
    return tokenText(data);
  };
  const header = () => {
    const data = new Uint8Array(25);
    data[0] = 0x80;
    new DataView(data.buffer).setUint32(5, NOW);
    return data;
  };

  const cases: Record<string, () => Promise<string>> = {
    "bad base64 character": async () => (await valid()).replace(/^(.{10})./, "$1!"),
    // The header always holds a `_`; Python reads `/` in its place as the same bits.
    "standard base64 alphabet": async () => (await valid()).replace("_", "/"),
    "missing padding": async () => (await valid()).replace(/=+$/, ""),
    "trailing newline": async () => `${await valid()}\n`,
    "non-ASCII character": async () => (await valid()).replace(/^(.{10})./, "$1é"),
    "non-canonical trailing bits": async () => nonCanonical(await valid()),
    "empty string": async () => "",
    "wrong version byte (signed)": async () => {
      const data = tokenBytes(await valid());
      data[0] = 0x81;
      return sign(data.subarray(0, -32));
    },
    "too short": async () => tokenText(tokenBytes(await valid()).subarray(0, 40)),
    "HMAC bit flipped": async () => flipBit(await valid(), -1),
    "ciphertext bit flipped": async () => flipBit(await valid(), 30),
    "timestamp changed": async () => flipBit(await valid(), 8),
    "IV changed": async () => flipBit(await valid(), 9),
    "bad PKCS7 padding (signed)": async () => sign(concat(header(), await oneBlockWithoutPadding(new Uint8Array(16)))),
    "ciphertext not a multiple of 16 (signed)": async () =>
      sign(concat(header(), await oneBlockWithoutPadding(new Uint8Array(16).fill(16)), new Uint8Array(1))),
    "empty ciphertext (signed)": async () => sign(header()),
    "wrong key": () => encrypt(keys.other, "secret", { now: NOW }),
  };

  it("all fail with the same error class and message, whatever is wrong", async () => {
    const errors: [string, unknown][] = [];
    for (const [name, make] of Object.entries(cases)) errors.push([name, await rejection(decrypt(keys.primary, await make()))]);
    for (const c of fixtures.invalid) errors.push([`python: ${c.name}`, await rejection(decrypt(keys[c.key], c.token))]);

    for (const [name, error] of errors) {
      expect(error, name).toBeInstanceOf(InvalidToken);
      expect(error, name).toMatchObject({ name: "InvalidToken", message: "invalid token" });
      expect((error as Error).cause, name).toBeUndefined();
    }
    expect(new Set(errors.map(([, error]) => (error as Error).message)).size).toBe(1);
    expect(errors.length).toBe(Object.keys(cases).length + fixtures.invalid.length);
  });

  it("the signed bad-padding and wrong-length tokens do carry a valid signature", async () => {
    // Otherwise those cases would only exercise the HMAC check again.
    const token = await cases["bad PKCS7 padding (signed)"]!();
    expect(await extractTimestamp(keys.primary, token)).toBe(NOW);
  });

  it("extractTimestamp also checks the signature", async () => {
    for (const name of ["HMAC bit flipped", "timestamp changed", "wrong key", "bad base64 character"]) {
      await expect(extractTimestamp(keys.primary, await cases[name]!()), name).rejects.toThrow(InvalidToken);
    }
  });
});

describe("ttl", () => {
  const TTL = 300;
  const decryptAt = async (stampedAt: number, now: number) =>
    decrypt(keys.primary, await encrypt(keys.primary, "ttl", { now: stampedAt }), { ttl: TTL, now });

  it("accepts a token exactly ttl seconds old and rejects one a second older", async () => {
    await expect(decryptAt(NOW - TTL, NOW)).resolves.toBeInstanceOf(Uint8Array);
    await expect(decryptAt(NOW - TTL - 1, NOW)).rejects.toThrow(new InvalidToken());
  });

  it("accepts a token up to 60 s in the future and rejects one 61 s ahead", async () => {
    await expect(decryptAt(NOW + 60, NOW)).resolves.toBeInstanceOf(Uint8Array);
    await expect(decryptAt(NOW + 61, NOW)).rejects.toThrow(new InvalidToken());
  });

  it("checks neither age nor skew without a ttl, as Python does", async () => {
    const ancient = await encrypt(keys.primary, "old", { now: 0 });
    const future = await encrypt(keys.primary, "new", { now: NOW + 10 ** 9 });
    await expect(decrypt(keys.primary, ancient)).resolves.toBeInstanceOf(Uint8Array);
    await expect(decrypt(keys.primary, future)).resolves.toBeInstanceOf(Uint8Array);
  });

  for (const c of fixtures.ttl) {
    it(`agrees with Python on ${c.name} (${c.valid ? "valid" : "invalid"})`, async () => {
      const attempt = decrypt(keys[c.key], c.token, { ttl: c.ttl, now: c.now });
      if (c.valid) await expect(attempt).resolves.toBeInstanceOf(Uint8Array);
      else await expect(attempt).rejects.toThrow(new InvalidToken());
    });
  }
});

describe("keys", () => {
  it("generateKey makes 44-character padded url-safe keys of 32 random bytes", async () => {
    const key = generateKey();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(tokenBytes(key).length).toBe(32);
    expect(generateKey()).not.toBe(key);
    const imported = await importFernetKey(key);
    expect(await decrypt(imported, await encrypt(imported, "x"))).toEqual(new TextEncoder().encode("x"));
  });

  it("rejects what is not 32 bytes of padded base64, without echoing the key", async () => {
    const good = fixtures.keys.primary;
    const bad = [
      good.slice(0, -1),
      good.replace(/=$/, "A="),
      tokenText(new Uint8Array(31).fill(7)),
      tokenText(new Uint8Array(33).fill(7)),
      `${good.slice(0, 20)}!${good.slice(21)}`,
      "",
    ];
    for (const text of bad) {
      const error = await rejection(importFernetKey(text));
      expect(error, text).toBeInstanceOf(InvalidFernetKey);
      expect(String(error)).not.toContain(text.slice(0, 8) || "\0");
    }
  });

  it("imported keys expose no key material", async () => {
    const key: FernetKey = keys.primary;
    expect(key.signingKey.extractable).toBe(false);
    expect(key.encryptionKey.extractable).toBe(false);
    expect(JSON.stringify(key)).not.toContain(fixtures.keys.primary.slice(0, 8));
  });
});

// ENCRYPTION_KEY made with `openssl rand -base64 32`, pasted with quotes, wrapped: whatever Python's
// `Fernet(key)` takes, we take, as the same key (contract, section 1).
describe("keys, read as Python reads them", () => {
  // The ids stored rows already carry (encryption_key_id): reading keys differently must not move them.
  const PINNED_IDS = { primary: "22d4f0676bfefb02", previous: "a85b65e86ffe4307", other: "b003ee6bd8290241" };
  const standard = (key: string) => key.replace(/-/g, "+").replace(/_/g, "/");
  const idOf = async (text: string) => keyId(await importFernetKey(text));

  it("keeps the id of every url-safe key as it was", async () => {
    for (const name of ["primary", "previous", "other"] as const) {
      expect(await idOf(fixtures.keys[name]), name).toBe(PINNED_IDS[name]);
    }
  });

  it("accepts each spelling Python accepts, as the same key with the same id", async () => {
    const key = fixtures.keys.primary; // holds a `-`, so its standard spelling differs
    expect(standard(key)).not.toBe(key);
    const spellings = {
      "standard alphabet (openssl rand -base64 32)": standard(key),
      "both alphabets mixed": standard(key).replace("+", "-"),
      "surrounding whitespace": ` \t${standard(key)}\r\n`,
      "wrapped over lines": `${key.slice(0, 20)}\n${key.slice(20)}`,
      "in literal quotes": `"${standard(key)}"`,
      "extra padding": `${key}==`,
      "a stray `=` before the data": `=${key}`,
      "a stray `=` where Python ignores it": `${key.slice(0, 20)}=${key.slice(20)}`,
      "punctuation inside": `${key.slice(0, 10)}!.${key.slice(10)}`,
      "junk after the padding": `${key}!`,
      "non-zero bits after the last byte": key.replace(/E=$/, "F="),
    };
    for (const [name, text] of Object.entries(spellings)) expect(await idOf(text), name).toBe(PINNED_IDS.primary);
  });

  it("refuses what Python refuses, and base64 after the padding, where Pythons disagree", async () => {
    const key = fixtures.keys.primary;
    const refused = {
      "missing padding": key.slice(0, -1),
      "standard alphabet without padding": standard(key).slice(0, -1),
      "non-ASCII character": `${key.slice(0, 10)}é${key.slice(10)}`,
      "non-breaking space inside": `${key.slice(0, 10)}\u00a0${key.slice(10)}`,
      "31 bytes": Buffer.alloc(31, 7).toString("base64"),
      "33 bytes": Buffer.alloc(33, 7).toString("base64"),
      "only padding": "====",
    };
    // Python 3.11 and 3.12 read up to the padding and drop the rest; 3.13 and later refuse the whole.
    const afterPadding = {
      "two keys in one variable": `${key} ${fixtures.keys.other}`,
      "a comment after the key": `${key} # production`,
      "base64 after the padding": `${key}AAAA`,
    };
    const rule = "Fernet key must be 32 bytes in padded base64 (url-safe or standard alphabet)";
    for (const [texts, message] of [[refused, rule], [afterPadding, `${rule}, with nothing after its padding`]] as const) {
      for (const [name, text] of Object.entries(texts)) {
        const error = await rejection(importFernetKey(text));
        expect(error, name).toBeInstanceOf(InvalidFernetKey);
        expect((error as Error).message, name).toBe(message);
        expect(String(error), name).not.toContain(key.slice(0, 8));
      }
    }
  });

  it.skipIf(!hasPythonCryptography())(
    "agree with live Python on a battery of spellings (skipped when python3 with `cryptography` is not installed)",
    async () => {
      const battery = keySpellings(1500);
      const python = readKeysInPython(battery);
      let accepted = 0;
      for (const [index, text] of battery.entries()) {
        const canonical = python[index]!;
        const ours = await importFernetKey(text).then(keyId, (error: unknown) => {
          expect(error).toBeInstanceOf(InvalidFernetKey);
          return null;
        });
        expect(ours, JSON.stringify(text)).toBe(canonical === null ? null : await idOf(canonical));
        if (ours !== null) accepted++;
      }
      // The battery exercises both verdicts in earnest.
      expect(accepted).toBeGreaterThan(battery.length / 4);
      expect(accepted).toBeLessThan((battery.length * 3) / 4);
    },
  );
});

// fernet.ts keeps one cipher and hash state per key and reuses it for every token, and checks the
// PKCS7 padding itself: these check that no token leaks into the next, and the padding rule.
describe("tokens on reused per-key state", () => {
  it("equal the textbook construction on fresh ciphers, under interleaved keys and at every length", async () => {
    const names = ["primary", "previous", "other"] as const;
    for (let i = 0; i < 300; i++) {
      const name = names[i % 3]!;
      const plaintext = crypto.getRandomValues(new Uint8Array(i % 30 === 0 ? 1024 + (i % 17) : i % 50));
      const iv = crypto.getRandomValues(new Uint8Array(16));
      const token = await encrypt(keys[name], plaintext, { now: NOW + i, iv });
      expect(token, `token ${i}`).toBe(textbookToken(fixtures.keys[name], plaintext, iv, NOW + i));
      expect(await decrypt(keys[name], token), `token ${i}`).toEqual(plaintext);
    }
  });

  it("decrypt gives a plain Uint8Array holding exactly the plaintext", async () => {
    const plaintext = await decrypt(keys.primary, await encrypt(keys.primary, "abc"));
    expect(Object.getPrototypeOf(plaintext)).toBe(Uint8Array.prototype);
    expect(plaintext.buffer.byteLength).toBe(3);
  });

  it("a copy of a key is not a key: it is refused with a TypeError, not taken for a bad token", async () => {
    const copy: FernetKey = { ...keys.primary };
    const token = await encrypt(keys.primary, "x");
    await expect(encrypt(copy, "x")).rejects.toThrow(TypeError);
    await expect(decrypt(copy, token)).rejects.toThrow(TypeError);
    await expect(extractTimestamp(copy, token)).rejects.toThrow(TypeError);
  });
});

describe("PKCS7 padding, read as Python reads it", () => {
  const header = new Uint8Array(25);
  header[0] = 0x80;
  new DataView(header.buffer).setUint32(5, NOW);
  // A signed token whose ciphertext decrypts to exactly `blocks` (zero IV): only the padding can be at fault.
  const withBlocks = (blocks: number[]) => {
    const aes = createCipheriv("aes-128-cbc", tokenBytes(fixtures.keys.primary).subarray(16), new Uint8Array(16));
    return sign(concat(header, aes.setAutoPadding(false).update(new Uint8Array(blocks)), aes.final()));
  };
  const filler = (length: number) => Array.from({ length }, (_, i) => 0x41 + i);

  it("takes 1 to 16 bytes, each holding their count, off the end", async () => {
    for (let count = 1; count <= 16; count++) {
      const token = await withBlocks([...filler(16 - count), ...Array(count).fill(count)]);
      expect(await decrypt(keys.primary, token), `count ${count}`).toEqual(new Uint8Array(filler(16 - count)));
    }
  });

  it("refuses a count of 0 or above 16, and padding bytes that disagree with the count", async () => {
    const bad = {
      "count 0": [...filler(15), 0],
      "count 17": [...filler(15), 17],
      "count 17, over two blocks": Array(32).fill(17),
      "count 255": [...filler(15), 255],
      "count 3, one byte 4": [...filler(13), 4, 3, 3],
      "count 16, first byte 15": [15, ...Array(15).fill(16)],
      "count 2, one byte 0": [...filler(14), 0, 2],
    };
    for (const [name, block] of Object.entries(bad)) {
      const token = await withBlocks(block);
      expect(await extractTimestamp(keys.primary, token), name).toBe(NOW); // signed: only the padding is wrong
      await expect(decrypt(keys.primary, token), name).rejects.toThrow(new InvalidToken());
    }
  });
});

describe("key material", () => {
  it("shows in no form when a key is printed, inspected (hidden properties too) or serialised", () => {
    const raw = tokenBytes(fixtures.keys.primary);
    const forms = [fixtures.keys.primary.slice(0, 12)];
    for (const half of [raw.subarray(0, 16), raw.subarray(16)]) {
      const text = Buffer.from(half);
      forms.push(text.toString("hex").slice(0, 12), text.toString("base64").slice(0, 12), text.toString("base64url").slice(0, 12));
      forms.push(Array.from(half.subarray(0, 4)).join(", ")); // how a Uint8Array prints
    }
    const key = keys.primary;
    expect(Object.getOwnPropertyNames(key).sort()).toEqual(["encryptionKey", "id", "signingKey"]);
    const shown = [JSON.stringify(key), String(key), inspect(key, { showHidden: true, depth: Infinity, getters: true })];
    for (const text of shown) for (const form of forms) expect(text).not.toContain(form);
  });
});

// Deployments run this module under Deno, whose node:crypto is its own implementation, not Node's
// (where the rest of this file runs): the same checks, in a Deno process.
describe("under Deno", () => {
  it("reads and reproduces Python's tokens, refuses the bad ones, and matches the textbook on fresh tokens", () => {
    const names = ["primary", "previous", "other"] as const;
    const fresh = Array.from({ length: 60 }, (_, i) => {
      const plaintext = crypto.getRandomValues(new Uint8Array(i % 20 === 0 ? 1024 + i : i % 40));
      const iv = crypto.getRandomValues(new Uint8Array(16));
      const key = names[i % 3]!;
      return {
        name: `fresh ${i}`,
        key,
        time: NOW + i,
        iv_hex: Buffer.from(iv).toString("hex"),
        plaintext_b64: Buffer.from(plaintext).toString("base64"),
        token: textbookToken(fixtures.keys[key], plaintext, iv, NOW + i),
      };
    });
    const made = [...fixtures.tokens, ...fixtures.deterministic, ...fresh];
    const code = `import { Buffer } from "node:buffer";
import { decrypt, encrypt, importFernetKey, InvalidToken } from ${JSON.stringify(new URL("../shared/crypto/fernet.ts", import.meta.url).href)};
const request = JSON.parse(await new Response(Deno.stdin.readable).text());
const keys = {};
for (const [name, text] of Object.entries(request.keys)) keys[name] = await importFernetKey(text);
const tokens = [];
for (const c of request.made) {
  tokens.push(await encrypt(keys[c.key], Buffer.from(c.plaintext_b64, "base64"), { now: c.time, iv: Buffer.from(c.iv_hex, "hex") }));
}
const opened = [];
for (const c of request.opened) {
  opened.push(await decrypt(keys[c.key], c.token).then((p) => Buffer.from(p).toString("base64"), (e) => e instanceof InvalidToken ? null : String(e)));
}
console.log(JSON.stringify({ tokens, opened }));`;
    // The keys go over stdin, never argv.
    const request = { keys: fixtures.keys, made, opened: [...made, ...fixtures.invalid] };
    const deno = fileURLToPath(new URL("../node_modules/.bin/deno", import.meta.url));
    const result = spawnSync(deno, ["eval", "--quiet", code], { input: JSON.stringify(request), encoding: "utf8", timeout: 60_000 });
    expect(result.stderr).toBe("");
    const answer = JSON.parse(result.stdout) as { tokens: string[]; opened: (string | null)[] };
    expect(answer.tokens).toEqual(made.map((c) => c.token));
    expect(answer.opened).toEqual([...made.map((c) => c.plaintext_b64), ...fixtures.invalid.map(() => null)]);
  });
});

// Fernet as its spec writes it, on fresh node:crypto ciphers that pad for themselves.
function textbookToken(keyText: string, plaintext: Uint8Array, iv: Uint8Array, now: number): string {
  const raw = tokenBytes(keyText);
  const versionAndTime = new Uint8Array(9);
  versionAndTime[0] = 0x80;
  new DataView(versionAndTime.buffer).setBigUint64(1, BigInt(now));
  const aes = createCipheriv("aes-128-cbc", raw.subarray(16), iv);
  const body = concat(versionAndTime, iv, aes.update(plaintext), aes.final());
  return tokenText(concat(body, createHmac("sha256", raw.subarray(0, 16)).update(body).digest()));
}

// Random spellings of random keys: the url-safe or standard character for each position, junk
// (whitespace, quotes, punctuation, now and then a non-ASCII character) between characters, an
// `=` where a group has fewer than two characters in (Python skips it there), then padding, extra
// padding and trailing junk; and now and then a fault: a character dropped, doubled or replaced,
// the padding left out. No base64 follows the closing padding: Pythons disagree there (see above).
function keySpellings(count: number): string[] {
  const junk = [" ", "\n", "\r\n", "\t", '"', "'", "!", ".", "*", "#", "~", "\\", ":"];
  const rare = ["é", "\u00a0", "\ufeff", "€"];
  const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
  const chance = (p: number) => Math.random() < p;
  return Array.from({ length: count }, () => {
    const data = Buffer.from(crypto.getRandomValues(new Uint8Array(chance(0.1) ? pick([31, 33]) : 32)))
      .toString("base64url")
      .split("");
    if (chance(0.1)) data.splice(Math.floor(Math.random() * data.length), 1);
    if (chance(0.1)) data.splice(Math.floor(Math.random() * data.length), 0, pick(data));
    let text = "";
    for (const [position, char] of data.entries()) {
      if (chance(0.08)) text += pick(junk);
      if (chance(0.01)) text += pick(rare);
      if (chance(0.04) && position % 4 < 2) text += "=";
      text += char === "-" || char === "_" ? (chance(0.5) ? char : char === "-" ? "+" : "/") : char;
    }
    const padding = (4 - (data.length % 4)) % 4;
    if (!chance(0.1)) text += "=".repeat(padding + (chance(0.2) ? 1 : 0));
    if (chance(0.1)) text += pick(junk);
    return text;
  });
}

// A token whose base64 spells the same bytes with non-zero bits after the last byte; Python's
// decoder would accept it, ours insists on the one canonical spelling.
function nonCanonical(token: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const at = token.length - 1 - (token.match(/=+$/)?.[0].length ?? 0);
  expect(at).toBeLessThan(token.length - 1);
  return token.slice(0, at) + alphabet[alphabet.indexOf(token[at]!) | 1] + token.slice(at + 1);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// Appends a correct HMAC under the primary key, so only the body can be at fault.
async function sign(body: Uint8Array): Promise<string> {
  const raw = tokenBytes(fixtures.keys.primary);
  const hmacKey = await crypto.subtle.importKey("raw", raw.subarray(0, 16), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return tokenText(concat(body, new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, concat(body)))));
}

// WebCrypto always pads, so encrypt one block and drop the padding block it adds: what remains
// decrypts (zero IV) to exactly `block`, whose last byte need not be valid PKCS7 padding.
async function oneBlockWithoutPadding(block: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const raw = tokenBytes(fixtures.keys.primary);
  const aesKey = await crypto.subtle.importKey("raw", raw.subarray(16), { name: "AES-CBC" }, false, ["encrypt"]);
  const ciphertext = await crypto.subtle.encrypt({ name: "AES-CBC", iv: new Uint8Array(16) }, aesKey, block);
  return new Uint8Array(ciphertext, 0, 16);
}

