// Fernet (https://github.com/fernet/spec) on WebCrypto, byte-compatible with Python's
// `cryptography.fernet`: tokens either side makes, the other side reads.
//
// token = base64url(0x80 | timestamp (u64 BE seconds) | IV (16) | AES-128-CBC ciphertext | HMAC-SHA256)
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

// The raw key bytes live only inside non-extractable CryptoKeys, imported once and reused.
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
const MIN_TOKEN_LENGTH = CIPHERTEXT_OFFSET + BLOCK_LENGTH + HMAC_LENGTH;
const MAX_CLOCK_SKEW = 60;
const KEY_ID_DOMAIN = "fernet-key-id/v1\0";

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
    const [signingKey, encryptionKey, id] = await Promise.all([
      crypto.subtle.importKey("raw", raw.subarray(0, 16), { name: "HMAC", hash: "SHA-256" }, false, [
        "sign",
        "verify",
      ]),
      crypto.subtle.importKey("raw", raw.subarray(16), { name: "AES-CBC" }, false, ["encrypt", "decrypt"]),
      fingerprint(raw),
    ]);
    return Object.freeze({ id, signingKey, encryptionKey });
  } finally {
    raw.fill(0);
  }
}

// A short, stable, non-secret name for a key, stored next to each token so operators can see which
// key wrote a row.
export function keyId(key: FernetKey): string {
  return key.id;
}

export async function encrypt(
  key: FernetKey,
  plaintext: Uint8Array | string,
  options: EncryptOptions = {},
): Promise<string> {
  const now = options.now ?? currentSeconds();
  if (!Number.isSafeInteger(now) || now < 0) throw new RangeError("now must be a non-negative integer (unix seconds)");
  if (options.iv !== undefined && options.iv.length !== BLOCK_LENGTH) throw new RangeError("iv must be 16 bytes");

  const header = new Uint8Array(CIPHERTEXT_OFFSET);
  header[0] = VERSION;
  writeTimestamp(header, now);
  const iv = header.subarray(IV_OFFSET);
  if (options.iv === undefined) crypto.getRandomValues(iv);
  else iv.set(options.iv);

  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-CBC", iv },
    key.encryptionKey,
    typeof plaintext === "string" ? textEncoder.encode(plaintext) : ownBuffer(plaintext),
  );

  const token = new Uint8Array(CIPHERTEXT_OFFSET + ciphertext.byteLength + HMAC_LENGTH);
  token.set(header);
  token.set(new Uint8Array(ciphertext), CIPHERTEXT_OFFSET);
  const signed = token.subarray(0, token.length - HMAC_LENGTH);
  token.set(new Uint8Array(await crypto.subtle.sign("HMAC", key.signingKey, signed)), signed.length);
  return encodeBase64Url(token);
}

export async function decrypt(key: FernetKey, token: string, options: DecryptOptions = {}): Promise<Uint8Array> {
  return (await decryptWithTimestamp(key, token, options)).plaintext;
}

// For key rotation, which re-encrypts under the original timestamp.
export async function decryptWithTimestamp(
  key: FernetKey,
  token: string,
  options: DecryptOptions = {},
): Promise<{ plaintext: Uint8Array; timestamp: number }> {
  const opened = await open(key, token, options);
  if (opened === null) throw new InvalidToken();
  return opened;
}

// Like Python's `extract_timestamp`: the signature is checked, so the time is the one the key holder wrote.
export async function extractTimestamp(key: FernetKey, token: string): Promise<number> {
  const timestamp = await signedTimestamp(key, token);
  if (timestamp === null) throw new InvalidToken();
  return timestamp;
}

// Tells which key wrote a token by its signature alone, without decrypting anything.
export async function isSignedBy(key: FernetKey, token: string): Promise<boolean> {
  return (await signedTimestamp(key, token)) !== null;
}

async function signedTimestamp(key: FernetKey, token: string): Promise<number | null> {
  const data = parseToken(token);
  if (data === null) return null;
  const timestamp = readTimestamp(data);
  return timestamp !== null && (await hasValidSignature(key, data)) ? timestamp : null;
}

// The checks run in the order of Python's `_decrypt_data`: clock, then signature, and only a token
// whose signature holds is ever decrypted, so the padding check cannot become an oracle.
async function open(
  key: FernetKey,
  token: string,
  options: DecryptOptions,
): Promise<{ plaintext: Uint8Array; timestamp: number } | null> {
  const data = parseToken(token);
  if (data === null) return null;
  const timestamp = readTimestamp(data);
  if (timestamp === null) return null;
  if (options.ttl !== undefined && !isFresh(timestamp, options.ttl, options.now ?? currentSeconds())) return null;
  if (!(await hasValidSignature(key, data))) return null;
  const plaintext = await decryptCiphertext(key, data);
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

// crypto.subtle.verify compares in constant time.
function hasValidSignature(key: FernetKey, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const end = data.length - HMAC_LENGTH;
  return crypto.subtle.verify("HMAC", key.signingKey, data.subarray(end), data.subarray(0, end));
}

// WebCrypto strips the PKCS7 padding itself and fails on a bad one.
async function decryptCiphertext(key: FernetKey, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array | null> {
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-CBC", iv: data.subarray(IV_OFFSET, CIPHERTEXT_OFFSET) },
      key.encryptionKey,
      data.subarray(CIPHERTEXT_OFFSET, data.length - HMAC_LENGTH),
    );
    return new Uint8Array(plaintext);
  } catch {
    return null;
  }
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
async function fingerprint(raw: Uint8Array<ArrayBuffer>): Promise<string> {
  const domain = textEncoder.encode(KEY_ID_DOMAIN);
  const input = new Uint8Array(domain.length + raw.length);
  input.set(domain);
  input.set(raw, domain.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  input.fill(0);
  return Array.from(digest.subarray(0, 8), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function currentSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

// WebCrypto takes views of a plain ArrayBuffer only; anything else (a SharedArrayBuffer) is copied.
function ownBuffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

// Base64 with the url-safe alphabet and `=` padding, as Python's `urlsafe_b64encode` writes it.
// Table-driven over byte arrays: tokens of many KiB encode and decode without string concatenation.
const ALPHABET = textEncoder.encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
const PAD = 0x3d;
const SEXTETS = new Int8Array(256).fill(-1);
ALPHABET.forEach((code, value) => (SEXTETS[code] = value));

function encodeBase64Url(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  const whole = bytes.length - (bytes.length % 3);
  let o = 0;
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ALPHABET[n >>> 18]!;
    out[o++] = ALPHABET[(n >>> 12) & 63]!;
    out[o++] = ALPHABET[(n >>> 6) & 63]!;
    out[o++] = ALPHABET[n & 63]!;
  }
  if (whole < bytes.length) {
    const second = whole + 1 < bytes.length;
    const n = (bytes[whole]! << 16) | (second ? bytes[whole + 1]! << 8 : 0);
    out[o++] = ALPHABET[n >>> 18]!;
    out[o++] = ALPHABET[(n >>> 12) & 63]!;
    out[o++] = second ? ALPHABET[(n >>> 6) & 63]! : PAD;
    out[o++] = PAD;
  }
  return textDecoder.decode(out);
}

// Tokens only: returns null for anything but canonical padded url-safe base64.
function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (text.length % 4 !== 0) return null;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  const wholeQuads = text.length - (padding === 0 ? 0 : 4);
  // A character outside the alphabet maps to -1 and leaves `invalid` negative; checked once at the end.
  let invalid = 0;
  let o = 0;
  for (let i = 0; i < wholeQuads; i += 4) {
    const n =
      (sextet(text, i) << 18) | (sextet(text, i + 1) << 12) | (sextet(text, i + 2) << 6) | sextet(text, i + 3);
    invalid |= n;
    out[o++] = n >>> 16;
    out[o++] = n >>> 8;
    out[o++] = n;
  }
  if (padding !== 0) {
    const a = sextet(text, wholeQuads);
    const b = sextet(text, wholeQuads + 1);
    const c = padding === 1 ? sextet(text, wholeQuads + 2) : 0;
    invalid |= a | b | c;
    // The bits past the last byte must be zero, or two spellings would decode to the same token.
    if (padding === 2 ? (b & 15) !== 0 : (c & 3) !== 0) return null;
    out[o++] = (a << 2) | (b >>> 4);
    if (padding === 1) out[o++] = ((b & 15) << 4) | (c >>> 2);
  }
  return invalid < 0 ? null : out;
}

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 256 ? SEXTETS[code]! : -1;
}
