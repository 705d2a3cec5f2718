// Fernet (https://github.com/fernet/spec) on node:crypto, byte-compatible with Python's
// `cryptography.fernet`: tokens either side makes, the other side reads.
//
// token = base64url(0x80 | timestamp (u64 BE seconds) | IV (16) | AES-128-CBC ciphertext | HMAC-SHA256)
//
// Why node:crypto and not WebCrypto: under Deno each crypto.subtle call is a hop to a worker thread,
// four per encrypt+decrypt, which costs far more than the work itself; node:crypto is synchronous
// and native, and is there in Deno, Node and Supabase's edge runtime alike. It is used at its
// cheapest: each key's cipher and hash state is made once (KeyContext below) and every token reuses
// it, since building a fresh Cipheriv or Hmac costs more under Deno than encrypting 1 KiB with it.
//
// Keys are read exactly as Python reads them (key-base64.ts): every key a Python deployment runs
// with runs here, and its id depends only on its 32 bytes, not on how they were spelled.
//
// Where we differ from Python on purpose: a token's base64 must be canonical (url-safe alphabet, `=`
// padding, zero trailing bits). Python's decoder also skips stray characters and accepts `+` and `/`,
// but tokens are only ever written by an encoder (Python's `Fernet.encrypt` or ours), never typed or
// pasted by a person, and both encoders write that one spelling; being strict means one token has
// exactly one spelling. Timestamps above 2^53 s (a JavaScript number's exact range) make a token
// invalid; no clock produces them. `extractTimestamp` checks a token's shape as `decrypt` does,
// where Python's only checks the signature: either way only a key holder could make a signed token
// of the wrong shape.

import { Buffer } from "node:buffer";
import { createCipheriv, createDecipheriv, createHash, timingSafeEqual } from "node:crypto";
import type { Cipher, Decipher, Hash } from "node:crypto";
import { decodeKeyBase64 } from "./key-base64.ts";

// Every rejection, whatever its cause, is this error with this message and is thrown from a single
// place per entry point, so a caller (or an attacker probing us) cannot tell one failure from another.
export class InvalidToken extends Error {
  constructor() {
    super("invalid token");
    this.name = "InvalidToken";
  }
}

// The message never includes the key: it usually comes straight from configuration.
export class InvalidFernetKey extends Error {
  /** The text goes on with base64 after its padding: two keys in one variable, or a comment? */
  readonly afterPadding: boolean;

  constructor(afterPadding = false) {
    super(
      "Fernet key must be 32 bytes in padded base64 (url-safe or standard alphabet)" +
        (afterPadding ? ", with nothing after its padding" : ""),
    );
    this.name = "InvalidFernetKey";
    this.afterPadding = afterPadding;
  }
}

/**
 * A key made by `importFernetKey`. The raw bytes are reachable from nowhere: this module keeps the
 * key's node:crypto state apart from the object (`contexts`), so printing or JSON-serialising a key
 * shows its id only. `signingKey` and `encryptionKey` are the same two halves as non-extractable
 * WebCrypto keys, for a caller that wants WebCrypto; this module itself does not use them.
 */
export interface FernetKey {
  readonly id: string;
  readonly signingKey: CryptoKey;
  readonly encryptionKey: CryptoKey;
}

export interface EncryptOptions {
  /** Unix seconds to stamp the token with; defaults to the current time. */
  now?: number;
  /** 16 bytes; defaults to random. Fixing it only makes sense to reproduce a known token. */
  iv?: Uint8Array;
}

export interface DecryptOptions {
  /** Maximum age in seconds; without it neither the age nor the clock skew is checked (as in Python). */
  ttl?: number;
  /** Unix seconds to check the ttl against; defaults to the current time. */
  now?: number;
}

const VERSION = 0x80;
const TIMESTAMP_OFFSET = 1;
const IV_OFFSET = 9;
const CIPHERTEXT_OFFSET = 25;
const HMAC_LENGTH = 32;
const BLOCK_LENGTH = 16;
const SHA256_BLOCK_LENGTH = 64;
const MIN_TOKEN_LENGTH = CIPHERTEXT_OFFSET + BLOCK_LENGTH + HMAC_LENGTH;
const MAX_CLOCK_SKEW = 60;
const KEY_ID_DOMAIN = "fernet-key-id/v1\0";

/**
 * One key's node:crypto state, made once at import and reused by every token: under Deno, building
 * a Cipheriv or an Hmac (a stream object, and the HMAC pads worked out in JavaScript) costs more
 * than the AES or SHA-256 work on a 1 KiB token. importFernetKey zeroes the 32 key bytes once this
 * is built: from then on they live only inside native state (these ciphers and hashes, and the
 * WebCrypto keys), never in a JavaScript value.
 *
 * HMAC-SHA256 is RFC 2104's definition on two SHA-256 states that have absorbed the padded key
 * (`inner`, `outer`), copied for each message. AES-128-CBC decryption is AES-128-ECB decryption of
 * every block, each then XORed with the block before it (the IV for the first): the blocks do not
 * depend on each other, so one ECB decipher serves every token. CBC encryption does chain, so one
 * never-finished CBC cipher serves every token: it XORs a token's first block with the last block
 * it produced (`chain`); XORing that block in ourselves as well cancels it out and leaves the
 * token's own IV in its place. Fernet's PKCS7 padding is added and checked here; the ciphers run
 * without padding, so every call takes and gives whole blocks and nothing stays buffered.
 */
class KeyContext {
  readonly #inner: Hash;
  readonly #outer: Hash;
  readonly #cbc: Cipher;
  readonly #ecb: Decipher;
  readonly #chain = new Uint8Array(BLOCK_LENGTH);
  // False from the moment the CBC cipher is fed until it has answered: if a call ever failed half
  // way, the next one first feeds a block of its own to learn where the chain stands.
  #chainKnown = true;

  constructor(raw: Uint8Array) {
    const pads = new Uint8Array(2 * SHA256_BLOCK_LENGTH);
    pads.fill(0x36, 0, SHA256_BLOCK_LENGTH).fill(0x5c, SHA256_BLOCK_LENGTH);
    for (let i = 0; i < 16; i++) {
      pads[i]! ^= raw[i]!;
      pads[SHA256_BLOCK_LENGTH + i]! ^= raw[i]!;
    }
    this.#inner = createHash("sha256").update(pads.subarray(0, SHA256_BLOCK_LENGTH));
    this.#outer = createHash("sha256").update(pads.subarray(SHA256_BLOCK_LENGTH));
    pads.fill(0);
    const encryptionKey = raw.subarray(16);
    // Starts from a zero IV, which is what `chain` holds until the first token.
    this.#cbc = createCipheriv("aes-128-cbc", encryptionKey, new Uint8Array(BLOCK_LENGTH)).setAutoPadding(false);
    // ECB takes no IV: an empty one, since the node:crypto of Supabase's edge runtime refuses null.
    this.#ecb = createDecipheriv("aes-128-ecb", encryptionKey, new Uint8Array(0)).setAutoPadding(false);
  }

  /** HMAC-SHA256 of `data` under the signing key: 32 bytes. */
  sign(data: Uint8Array): Uint8Array {
    return this.#outer.copy().update(this.#inner.copy().update(data).digest()).digest();
  }

  /** AES-128-CBC of `blocks` (whole blocks, padded by the caller) under `iv`; overwrites `blocks`. */
  encryptBlocks(blocks: Uint8Array, iv: Uint8Array): Uint8Array {
    if (!this.#chainKnown) this.#feed(new Uint8Array(BLOCK_LENGTH));
    for (let i = 0; i < BLOCK_LENGTH; i++) blocks[i]! ^= iv[i]! ^ this.#chain[i]!;
    return this.#feed(blocks);
  }

  /** The AES-128-CBC decryption of `ciphertext` (whole blocks) under `iv`, padding included. */
  decryptBlocks(ciphertext: Uint8Array, iv: Uint8Array): Uint8Array {
    const plaintext = wholeOutput(this.#ecb.update(ciphertext), ciphertext);
    for (let i = 0; i < BLOCK_LENGTH; i++) plaintext[i]! ^= iv[i]!;
    for (let i = BLOCK_LENGTH; i < plaintext.length; i++) plaintext[i]! ^= ciphertext[i - BLOCK_LENGTH]!;
    return plaintext;
  }

  #feed(blocks: Uint8Array): Uint8Array {
    this.#chainKnown = false;
    const ciphertext = wholeOutput(this.#cbc.update(blocks), blocks);
    this.#chain.set(ciphertext.subarray(ciphertext.length - BLOCK_LENGTH));
    this.#chainKnown = true;
    return ciphertext;
  }
}

// Without padding a cipher answers each whole block at once; anything else would be a runtime's
// fault, and must not pass for a token.
function wholeOutput(output: Uint8Array, input: Uint8Array): Uint8Array {
  if (output.length !== input.length) throw new Error("node:crypto returned a partial AES output");
  return output;
}

// Each imported key's KeyContext, out of the key object's reach (a WeakMap, so a dropped key's
// state goes with it).
const contexts = new WeakMap<FernetKey, KeyContext>();

function contextOf(key: FernetKey): KeyContext {
  const context = contexts.get(key);
  if (context === undefined) throw new TypeError("not a key made by importFernetKey");
  return context;
}

export function generateKey(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * Imports a key from its text, accepting exactly the texts Python's `Fernet(key)` accepts (see
 * key-base64.ts for the rule and its one exception); the id is a fingerprint of the 32 bytes, so
 * every spelling of a key has the same id. Throws InvalidFernetKey, which never shows the key.
 */
export async function importFernetKey(keyB64: string): Promise<FernetKey> {
  const decoded = typeof keyB64 === "string" ? decodeKeyBase64(keyB64) : { problem: "not base64" as const };
  const raw = decoded.bytes;
  if (raw === undefined || raw.length !== 32) {
    raw?.fill(0);
    throw new InvalidFernetKey(decoded.problem === "data after padding");
  }
  try {
    const [signingKey, encryptionKey] = await Promise.all([
      crypto.subtle.importKey("raw", raw.subarray(0, 16), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
        "verify",
      ]),
      crypto.subtle.importKey("raw", raw.subarray(16), { name: "AES-CBC" }, false, ["encrypt", "decrypt"]),
    ]);
    const key: FernetKey = Object.freeze({ id: fingerprint(raw), signingKey, encryptionKey });
    contexts.set(key, new KeyContext(raw));
    return key;
  } finally {
    raw.fill(0);
  }
}

// A short, stable, non-secret name for a key, stored next to each token so operators can see which
// key wrote a row.
export function keyId(key: FernetKey): string {
  return key.id;
}

/**
 * The Fernet token of `plaintext` (a string is encrypted as its UTF-8 bytes) under `key`, as
 * Python's `Fernet.encrypt` writes it. Async only to keep the callers' shape: the work is
 * synchronous. Rejects with RangeError for a bad `now` or `iv`, TypeError for a key not made by
 * importFernetKey.
 */
export async function encrypt(
  key: FernetKey,
  plaintext: Uint8Array | string,
  options: EncryptOptions = {},
): Promise<string> {
  const context = contextOf(key);
  const now = options.now ?? currentSeconds();
  if (!Number.isSafeInteger(now) || now < 0) throw new RangeError("now must be a non-negative integer (unix seconds)");
  if (options.iv !== undefined && options.iv.length !== BLOCK_LENGTH) throw new RangeError("iv must be 16 bytes");

  const bytes = typeof plaintext === "string" ? textEncoder.encode(plaintext) : plaintext;
  // PKCS7: 1 to 16 bytes, each holding their count.
  const padding = BLOCK_LENGTH - (bytes.length % BLOCK_LENGTH);
  const token = new Uint8Array(CIPHERTEXT_OFFSET + bytes.length + padding + HMAC_LENGTH);
  token[0] = VERSION;
  writeTimestamp(token, now);
  const iv = token.subarray(IV_OFFSET, CIPHERTEXT_OFFSET);
  if (options.iv === undefined) crypto.getRandomValues(iv);
  else iv.set(options.iv);

  // The padded plaintext goes where its ciphertext will, which then overwrites it.
  const body = token.subarray(CIPHERTEXT_OFFSET, token.length - HMAC_LENGTH);
  body.set(bytes);
  body.fill(padding, bytes.length);
  body.set(context.encryptBlocks(body, iv));
  const signed = token.subarray(0, token.length - HMAC_LENGTH);
  token.set(context.sign(signed), signed.length);
  return encodeBase64Url(token);
}

/**
 * The plaintext of a token `key` wrote, as Python's `Fernet.decrypt`; with `ttl`, only a token at
 * most `ttl` seconds old and at most 60 s in the future. Rejects with InvalidToken for anything
 * else, whatever the cause.
 */
export async function decrypt(key: FernetKey, token: string, options: DecryptOptions = {}): Promise<Uint8Array> {
  return (await decryptWithTimestamp(key, token, options)).plaintext;
}

// For key rotation, which re-encrypts under the original timestamp.
export async function decryptWithTimestamp(
  key: FernetKey,
  token: string,
  options: DecryptOptions = {},
): Promise<{ plaintext: Uint8Array; timestamp: number }> {
  const opened = open(contextOf(key), token, options);
  if (opened === null) throw new InvalidToken();
  return opened;
}

// Like Python's `extract_timestamp`: the signature is checked, so the time is the one the key holder wrote.
export async function extractTimestamp(key: FernetKey, token: string): Promise<number> {
  const timestamp = signedTimestamp(contextOf(key), token);
  if (timestamp === null) throw new InvalidToken();
  return timestamp;
}

// Tells which key wrote a token by its signature alone, without decrypting anything.
export async function isSignedBy(key: FernetKey, token: string): Promise<boolean> {
  return signedTimestamp(contextOf(key), token) !== null;
}

function signedTimestamp(context: KeyContext, token: string): number | null {
  const data = parseToken(token);
  if (data === null) return null;
  const timestamp = readTimestamp(data);
  return timestamp !== null && hasValidSignature(context, data) ? timestamp : null;
}

// The checks run in the order of Python's `_decrypt_data`: clock, then signature, and only a token
// whose signature holds is ever decrypted, so the padding check cannot become an oracle.
function open(
  context: KeyContext,
  token: string,
  options: DecryptOptions,
): { plaintext: Uint8Array; timestamp: number } | null {
  const data = parseToken(token);
  if (data === null) return null;
  const timestamp = readTimestamp(data);
  if (timestamp === null) return null;
  if (options.ttl !== undefined && !isFresh(timestamp, options.ttl, options.now ?? currentSeconds())) return null;
  if (!hasValidSignature(context, data)) return null;
  const plaintext = decryptCiphertext(context, data);
  return plaintext === null ? null : { plaintext, timestamp };
}

function parseToken(token: string): Uint8Array<ArrayBuffer> | null {
  const data = typeof token === "string" ? decodeBase64Url(token) : null;
  if (data === null || data[0] !== VERSION) return null;
  const ciphertextLength = data.length - CIPHERTEXT_OFFSET - HMAC_LENGTH;
  if (data.length < MIN_TOKEN_LENGTH || ciphertextLength % BLOCK_LENGTH !== 0) return null;
  return data;
}

function isFresh(timestamp: number, ttl: number, now: number): boolean {
  return !(timestamp + ttl < now) && !(now + MAX_CLOCK_SKEW < timestamp);
}

// timingSafeEqual compares in constant time.
function hasValidSignature(context: KeyContext, data: Uint8Array<ArrayBuffer>): boolean {
  const end = data.length - HMAC_LENGTH;
  return timingSafeEqual(context.sign(data.subarray(0, end)), data.subarray(end));
}

// Strips the PKCS7 padding, as Python's unpadder does: 1 to 16 bytes, each holding their count. The
// signature already holds, so only the key holder could have made a bad one; timing reveals nothing.
function decryptCiphertext(context: KeyContext, data: Uint8Array<ArrayBuffer>): Uint8Array | null {
  const padded = context.decryptBlocks(
    data.subarray(CIPHERTEXT_OFFSET, data.length - HMAC_LENGTH),
    data.subarray(IV_OFFSET, CIPHERTEXT_OFFSET),
  );
  const padding = padded[padded.length - 1]!;
  let valid = padding >= 1 && padding <= BLOCK_LENGTH;
  for (let i = padded.length - padding; valid && i < padded.length; i++) valid = padded[i] === padding;
  // The caller gets a plain Uint8Array of its own, and node:crypto's output is wiped: it is a Buffer
  // the runtime allocated, and whether from a pool later Buffers share is the runtime's choice.
  const plaintext = valid ? new Uint8Array(padded.subarray(0, padded.length - padding)) : null;
  padded.fill(0);
  return plaintext;
}

function writeTimestamp(header: Uint8Array<ArrayBuffer>, seconds: number): void {
  const view = new DataView(header.buffer, header.byteOffset);
  view.setUint32(TIMESTAMP_OFFSET, Math.floor(seconds / 2 ** 32));
  view.setUint32(TIMESTAMP_OFFSET + 4, seconds >>> 0);
}

function readTimestamp(data: Uint8Array<ArrayBuffer>): number | null {
  const view = new DataView(data.buffer, data.byteOffset);
  const timestamp = view.getUint32(TIMESTAMP_OFFSET) * 2 ** 32 + view.getUint32(TIMESTAMP_OFFSET + 4);
  return Number.isSafeInteger(timestamp) ? timestamp : null;
}

// 64 bits of SHA-256: one-way, and long enough that two keys in a ring never share one. The domain
// prefix keeps it from matching any other hash someone might publish of the same bytes.
function fingerprint(raw: Uint8Array): string {
  return createHash("sha256").update(KEY_ID_DOMAIN).update(raw).digest("hex").slice(0, 16);
}

function currentSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const textEncoder = new TextEncoder();

// Base64 with the url-safe alphabet and `=` padding, as Python's `urlsafe_b64encode` writes it.
// Buffer's base64url is native: several times faster than a table in JavaScript on a 1 KiB token.
function encodeBase64Url(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("base64url");
  return text.padEnd(Math.ceil(bytes.length / 3) * 4, "=");
}

// Tokens only: returns null for anything but canonical padded url-safe base64. Buffer's decoder is
// lenient (it takes `+` and `/`, skips stray characters, needs no padding, drops spare bits), so
// a text passes only if it is exactly how its bytes encode.
function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  const bytes = Buffer.from(text, "base64url");
  return encodeBase64Url(bytes) === text ? bytes : null;
}
