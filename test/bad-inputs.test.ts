// Bad input, case by case: each gets a clear 4xx with the contract's code (never a 500) and leaves
// both tables exactly as they were. Valid edge inputs (the limits themselves, SQL-like text,
// unicode) follow, and must be stored verbatim.
//
// About lying content-length headers: Node's (undici's) Request keeps a content-length header
// exactly as given, whatever the body, and derives none from a ReadableStream body (which needs
// `duplex: "half"`). So the handler can be shown a small declared length with a large stream, or
// no length at all; the body reader must count the bytes itself. A declared length above the
// limit is refused at once with 413, before anything is read.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKeyRing, type KeyRing } from "../shared/crypto/key-ring.ts";
import { encodeSegment } from "./support/firebase-tokens.ts";
import { startTestBackend, type CallResult, type TestBackend } from "./support/backend.ts";
import {
  byteStream,
  rawCall,
  registeredCaller,
  snapshotTables,
  tokenBody,
} from "./support/contract-helpers.ts";

let backend: TestBackend;
let ring: KeyRing;
/** A registered, active caller who already has a token and a Dexcom account. */
let token: string;
const CALLER = "bad-input-caller";
/** A caller who never registered: a wrongly accepted POST /users would create their row. */
const NEWCOMER = "bad-input-newcomer";

beforeAll(async () => {
  backend = await startTestBackend();
  ring = await loadKeyRing({ ENCRYPTION_KEY: backend.encryptionKey });
  token = await registeredCaller(backend, CALLER);
  const stored = await backend.call("dexcom-tokens", {
    method: "POST",
    token,
    json: tokenBody({ dexcom_user_id: "bad-input-dexcom-account" }),
  });
  expect(stored.status).toBe(201);
});
afterAll(() => backend.close());

const db = () => backend.database.db;
const JSON_TYPE = { "content-type": "application/json" };
const nowSeconds = () => Math.floor(Date.now() / 1000);
const encoder = new TextEncoder();

// --- ways to send ----------------------------------------------------------------------------

/** POST /dexcom-tokens as the registered caller with this JSON body. */
const storeJson = (json: unknown) => backend.call("dexcom-tokens", { method: "POST", token, json });
/** POST /dexcom-tokens as the registered caller with this raw body and these headers. */
const storeRaw = (body: BodyInit, headers: Record<string, string> = JSON_TYPE) =>
  backend.call("dexcom-tokens", { method: "POST", token, body, headers });
/** POST /dexcom-tokens with a valid body and this Authorization header value. */
const storeWithAuthorization = (authorization: string) =>
  backend.call("dexcom-tokens", { method: "POST", headers: { authorization }, json: tokenBody({ access_token: "from-a-bad-token" }) });
/** POST /dexcom-tokens with a valid body and an ID token made by `mint`. */
const storeWithToken = (mint: () => Promise<string> | string) => async () =>
  storeWithAuthorization(`Bearer ${await mint()}`);
/** POST /users as a caller who is not registered yet, with this raw body and headers. */
const registerRaw = async (body: BodyInit, headers: Record<string, string> = JSON_TYPE) =>
  backend.call("users", { method: "POST", token: await backend.token(NEWCOMER), body, headers });
/** A streamed POST, so content-length is whatever the headers say (or absent). */
const streamed = async (fn: string, idToken: string, bytes: Uint8Array, contentLength: string | null) =>
  rawCall(backend, `/${fn}`, {
    method: "POST",
    headers: { authorization: `Bearer ${idToken}`, ...JSON_TYPE, ...(contentLength === null ? {} : { "content-length": contentLength }) },
    body: byteStream(bytes),
  });

/** A JSON text of exactly `size` bytes: the object, padded with spaces (valid JSON whitespace). */
function paddedJson(value: unknown, size: number): string {
  const text = JSON.stringify(value);
  if (encoder.encode(text).length > size) throw new Error("the value alone is larger than the size");
  return text + " ".repeat(size - encoder.encode(text).length);
}

const claimsOf = (overrides: Record<string, unknown>) => ({ sub: CALLER, email: `${CALLER}@example.com`, ...overrides });
const mint = (overrides: Record<string, unknown> = {}) => backend.token(CALLER, overrides);

// --- the table -------------------------------------------------------------------------------

interface BadInput {
  name: string;
  send: () => Promise<CallResult>;
  status: number;
  code: string;
}

const authorizationCases: BadInput[] = [
  { name: "no Authorization header", send: () => backend.call("dexcom-tokens", { method: "POST", json: tokenBody() }), status: 401, code: "missing_token" },
  { name: "an empty Authorization header", send: () => storeWithAuthorization(""), status: 401, code: "missing_token" },
  { name: "Basic credentials", send: () => storeWithAuthorization("Basic dXNlcjpwYXNzd29yZA=="), status: 401, code: "invalid_token" },
  { name: "`Bearer` alone", send: () => storeWithAuthorization("Bearer"), status: 401, code: "invalid_token" },
  { name: "`Bearer a b`", send: () => storeWithAuthorization("Bearer a b"), status: 401, code: "invalid_token" },
  { name: "a bearer value that is not a JWT", send: () => storeWithAuthorization("Bearer not-a-jwt"), status: 401, code: "invalid_token" },
  { name: "a valid ID token without the Bearer scheme", send: async () => storeWithAuthorization(await mint()), status: 401, code: "invalid_token" },
  { name: "an unsigned token (alg none) outside emulator mode", send: storeWithToken(() => backend.keys.unsignedToken(claimsOf({}))), status: 401, code: "invalid_token" },
  { name: "HS256 signed with the public key", send: storeWithToken(() => backend.keys.hs256Token(claimsOf({}))), status: 401, code: "invalid_token" },
  { name: "an unknown kid", send: storeWithToken(() => backend.keys.idToken(claimsOf({}), { kid: "no-such-key" })), status: 401, code: "invalid_token" },
  { name: "no kid", send: storeWithToken(() => backend.keys.idToken(claimsOf({}), { kid: null })), status: 401, code: "invalid_token" },
  {
    name: "a payload changed after signing",
    send: storeWithToken(async () => {
      const [header, , signature] = (await mint({ sub: "someone-else" })).split(".");
      return `${header}.${encodeSegment(backend.keys.claims(claimsOf({})))}.${signature}`;
    }),
    status: 401,
    code: "invalid_token",
  },
  { name: "a wrong aud", send: storeWithToken(() => mint({ aud: "another-project" })), status: 401, code: "invalid_token" },
  { name: "a wrong iss", send: storeWithToken(() => mint({ iss: "https://securetoken.google.com/another-project" })), status: 401, code: "invalid_token" },
  { name: "an expired token", send: storeWithToken(() => mint({ iat: nowSeconds() - 7200, exp: nowSeconds() - 3600, auth_time: nowSeconds() - 7300 })), status: 401, code: "token_expired" },
  { name: "iat in the future", send: storeWithToken(() => mint({ iat: nowSeconds() + 3600, exp: nowSeconds() + 7200 })), status: 401, code: "invalid_token" },
  { name: "auth_time in the future", send: storeWithToken(() => mint({ auth_time: nowSeconds() + 3600 })), status: 401, code: "invalid_token" },
  { name: "no exp", send: storeWithToken(() => mint({ exp: undefined })), status: 401, code: "invalid_token" },
  { name: "no auth_time", send: storeWithToken(() => mint({ auth_time: undefined })), status: 401, code: "invalid_token" },
  { name: "an empty sub", send: storeWithToken(() => mint({ sub: "" })), status: 401, code: "invalid_token" },
  { name: "a 129-character sub", send: storeWithToken(() => mint({ sub: "u".repeat(129) })), status: 401, code: "invalid_token" },
  { name: "a numeric sub", send: storeWithToken(() => mint({ sub: 12345 })), status: 401, code: "invalid_token" },
];

const bodyCases: BadInput[] = [
  { name: "invalid JSON", send: () => storeRaw('{"access_token": "a", '), status: 400, code: "invalid_json" },
  { name: "bytes that are not UTF-8", send: () => storeRaw(new Uint8Array([0x7b, 0x22, 0x61, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), status: 400, code: "invalid_json" },
  { name: "a JSON array instead of an object", send: () => storeJson([tokenBody()]), status: 400, code: "validation_failed" },
  { name: "a JSON string instead of an object", send: () => storeJson(JSON.stringify(tokenBody())), status: 400, code: "validation_failed" },
  { name: "JSON null", send: () => storeRaw("null"), status: 400, code: "validation_failed" },
  { name: "a JSON number", send: () => storeRaw("42"), status: 400, code: "validation_failed" },
  { name: "no body at all", send: () => backend.call("dexcom-tokens", { method: "POST", token }), status: 400, code: "validation_failed" },
  { name: "text/plain with a JSON body", send: () => storeRaw(JSON.stringify(tokenBody()), { "content-type": "text/plain" }), status: 415, code: "unsupported_media_type" },
  { name: "form encoding", send: () => storeRaw("access_token=a&refresh_token=b&expires_in=60", { "content-type": "application/x-www-form-urlencoded" }), status: 415, code: "unsupported_media_type" },
  { name: "a JSON body without content-type", send: () => storeRaw(encoder.encode(JSON.stringify(tokenBody())), {}), status: 415, code: "unsupported_media_type" },
  { name: "65,537 bytes of valid JSON (one byte over)", send: () => storeRaw(paddedJson(tokenBody(), 65_537)), status: 413, code: "payload_too_large" },
  { name: "65 KiB declared as 10 bytes (streamed)", send: () => streamed("dexcom-tokens", token, encoder.encode(paddedJson(tokenBody(), 65 * 1024)), "10"), status: 413, code: "payload_too_large" },
  { name: "65 KiB without content-length (streamed)", send: () => streamed("dexcom-tokens", token, encoder.encode(paddedJson(tokenBody(), 65 * 1024)), null), status: 413, code: "payload_too_large" },
  { name: "1 MiB with an honest content-length", send: () => storeRaw(paddedJson(tokenBody(), 1024 * 1024)), status: 413, code: "payload_too_large" },
];

const fieldCases: [string, Record<string, unknown>][] = [
  ['expires_in as a string ("3600")', { expires_in: "3600" }],
  ["expires_in with a fraction (3600.5)", { expires_in: 3600.5 }],
  ["expires_in zero", { expires_in: 0 }],
  ["expires_in negative", { expires_in: -60 }],
  ["expires_in 31536001", { expires_in: 31_536_001 }],
  ["expires_in beyond a safe integer", { expires_in: 2 ** 53 }],
  ["expires_in true", { expires_in: true }],
  ["expires_in null", { expires_in: null }],
  ["no expires_in", { expires_in: undefined }],
  ["no access_token", { access_token: undefined }],
  ["no refresh_token", { refresh_token: undefined }],
  ["access_token as a number", { access_token: 12345 }],
  ["access_token as an object", { access_token: { value: "a" } }],
  ["a 4097-character access_token", { access_token: "a".repeat(4097) }],
  ["a 4097-character refresh_token", { refresh_token: "r".repeat(4097) }],
  ["an empty access_token", { access_token: "" }],
  ["an empty refresh_token", { refresh_token: "" }],
  ["an empty token_type", { token_type: "" }],
  ["an empty scope", { scope: "" }],
  ["an empty dexcom_user_id", { dexcom_user_id: "" }],
  ["a 51-character token_type", { token_type: "t".repeat(51) }],
  ["a 256-character scope", { scope: "s".repeat(256) }],
  ["a 256-character dexcom_user_id", { dexcom_user_id: "d".repeat(256) }],
  ["access_token null", { access_token: null }],
  ["refresh_token null", { refresh_token: null }],
  ["token_type null", { token_type: null }],
  ["scope null", { scope: null }],
  ["dexcom_user_id null", { dexcom_user_id: null }],
  ["an unknown key", { refresh_token_expires_in: 3600 }],
  ["a NUL byte in access_token", { access_token: "abc\u0000def" }],
  ["a NUL byte in refresh_token", { refresh_token: "\u0000" }],
  ["a NUL byte in dexcom_user_id", { dexcom_user_id: "dexcom\u0000id" }],
  ["a NUL byte in scope", { scope: "offline\u0000access" }],
  ["a NUL byte in a key", { ["access_token\u0000"]: "a" }],
];

const usersCases: BadInput[] = [
  { name: "POST /users with a JSON array", send: () => registerRaw("[]"), status: 400, code: "validation_failed" },
  { name: "POST /users with a JSON string", send: () => registerRaw('"hello"'), status: 400, code: "validation_failed" },
  { name: "POST /users with JSON null", send: () => registerRaw("null"), status: 400, code: "validation_failed" },
  { name: "POST /users with a NUL inside an ignored field", send: () => registerRaw(JSON.stringify({ note: "a\u0000b" })), status: 400, code: "validation_failed" },
  { name: "POST /users with a NUL inside an ignored key", send: () => registerRaw(JSON.stringify({ "no\u0000te": 1 })), status: 400, code: "validation_failed" },
  { name: "POST /users with a NUL deep inside an ignored field", send: () => registerRaw(JSON.stringify({ a: [{ b: ["\u0000"] }] })), status: 400, code: "validation_failed" },
  { name: "POST /users with invalid JSON", send: () => registerRaw("{"), status: 400, code: "invalid_json" },
  { name: "POST /users with text/plain", send: () => registerRaw("{}", { "content-type": "text/plain" }), status: 415, code: "unsupported_media_type" },
  { name: "POST /users with 65,537 bytes", send: () => registerRaw(paddedJson({}, 65_537)), status: 413, code: "payload_too_large" },
  {
    name: "POST /users with 65 KiB declared as 10 bytes (streamed)",
    send: async () => streamed("users", await backend.token(NEWCOMER), encoder.encode(paddedJson({}, 65 * 1024)), "10"),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "POST /users with a bad token",
    send: async () => backend.call("users", { method: "POST", token: await backend.keys.hs256Token({ sub: NEWCOMER }) }),
    status: 401,
    code: "invalid_token",
  },
  {
    name: "POST /users with a token whose email is longer than the column (256 characters)",
    send: async () => backend.call("users", { method: "POST", token: await backend.token(NEWCOMER, { email: `${"e".repeat(244)}@example.com` }) }),
    status: 400,
    code: "validation_failed",
  },
];

const cases: BadInput[] = [
  ...authorizationCases,
  ...bodyCases,
  ...fieldCases.map(([name, overrides]): BadInput => ({
    name,
    send: () => storeJson(tokenBody(overrides)),
    status: 400,
    code: "validation_failed",
  })),
  ...usersCases,
];

describe("bad input", () => {
  it("has at least 40 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s: clear 4xx with the contract's code, nothing changed", async (_, c) => {
    const before = await snapshotTables(db());
    const response = await c.send();
    expect({ status: response.status, code: response.body?.error }).toEqual({ status: c.status, code: c.code });
    expect(response.body.request_id).toBe(response.headers.get("x-request-id"));
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("names each offending field in validation details", async () => {
    const response = await storeJson(tokenBody({ expires_in: "3600", access_token: "", surplus: true }));
    expect(response.status).toBe(400);
    const paths = response.body.details.map((detail: { path: string }) => detail.path).sort();
    expect(paths).toEqual(["access_token", "expires_in", "surplus"]);
  });
});

describe("deeply nested JSON within 64 KiB", () => {
  // validation.ts findNul recurses once per nesting level; a few thousand levels (10 KB of
  // brackets) overflow the stack and the RangeError becomes a 500.
  it("POST /dexcom-tokens refuses 5,000 nested arrays with 400 validation_failed, not 500", async () => {
    const before = await snapshotTables(db());
    const response = await storeRaw("[".repeat(5000) + "]".repeat(5000));
    expect({ status: response.status, code: response.body.error }).toEqual({ status: 400, code: "validation_failed" });
    expect(await snapshotTables(db())).toEqual(before);
  });

  it("POST /users accepts a JSON object nested 5,000 levels deep, whose content is ignored", async () => {
    const body = '{"a":'.repeat(5000) + "1" + "}".repeat(5000);
    expect(body.length).toBeLessThanOrEqual(65_536);
    const response = await registerRaw(body);
    expect(response.status).not.toBe(500);
    expect([200, 201]).toContain(response.status);
  });
});

describe("NUL in the ID token's claims", () => {
  // The contract: "Strings never contain U+0000 (400)". A NUL in sub or email reaches Postgres,
  // which refuses it (22021), and the answer is a 500. Only a token Google signed (or, in emulator
  // mode, any unsigned token) can carry one, so this is reachable in local development only.
  it("POST /users with a NUL in the token's email answers 4xx, not 500", async () => {
    const response = await backend.call("users", { method: "POST", token: await backend.token("nul-email-uid", { email: "a\u0000b@example.com" }) });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });

  it("GET /users with a NUL in the token's sub answers 4xx, not 500", async () => {
    const response = await backend.call("users", { token: await backend.token("nul\u0000sub") });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });
});

// --- valid edge inputs -----------------------------------------------------------------------

interface StoredRow {
  access_token_encrypted: string;
  refresh_token_encrypted: string;
  token_type: string;
  scope: string;
  expires_in: number;
  dexcom_user_id: string | null;
  is_revoked: boolean;
}

async function storedRow(id: number): Promise<StoredRow & { access: string; refresh: string }> {
  const [row] = await db().query<StoredRow>(
    `SELECT t.access_token_encrypted, t.refresh_token_encrypted, t.token_type, t.scope, t.expires_in, t.is_revoked, u.dexcom_user_id
     FROM dexcom_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`,
    [id],
  );
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return {
    ...row!,
    access: decoder.decode(await ring.decrypt(row!.access_token_encrypted)),
    refresh: decoder.decode(await ring.decrypt(row!.refresh_token_encrypted)),
  };
}

describe("valid edge inputs", () => {
  it("accepts a body of exactly 65,536 bytes", async () => {
    const response = await storeRaw(paddedJson(tokenBody({ access_token: "at-the-limit" }), 65_536));
    expect(response.status).toBe(201);
    expect((await storedRow(response.body.token.id)).access).toBe("at-the-limit");
  });

  it("accepts exactly 65,536 streamed bytes without content-length", async () => {
    const response = await streamed("dexcom-tokens", token, encoder.encode(paddedJson(tokenBody(), 65_536)), null);
    expect(response.status).toBe(201);
  });

  it("accepts exactly 65,536 bytes on POST /users", async () => {
    const response = await backend.call("users", { method: "POST", token, body: paddedJson({ ignored: true }, 65_536), headers: JSON_TYPE });
    expect(response.status).toBe(200);
  });

  it("refuses a declared content-length above the limit at once, whatever the body (413)", async () => {
    const response = await streamed("dexcom-tokens", token, encoder.encode(JSON.stringify(tokenBody())), "65537");
    expect(response.status).toBe(413);
    expect(response.body.error).toBe("payload_too_large");
  });

  it("accepts 4,096-character tokens and stores them intact", async () => {
    const access = "A".repeat(4095) + "z";
    const refresh = "R".repeat(4095) + "z";
    const response = await storeJson(tokenBody({ access_token: access, refresh_token: refresh }));
    expect(response.status).toBe(201);
    const row = await storedRow(response.body.token.id);
    expect(row.access).toBe(access);
    expect(row.refresh).toBe(refresh);
  });

  it("accepts the longest token_type (50), scope (255) and dexcom_user_id (255)", async () => {
    const values = { token_type: "t".repeat(50), scope: "s".repeat(255), dexcom_user_id: "d".repeat(255) };
    const response = await storeJson(tokenBody(values));
    expect(response.status).toBe(201);
    expect(await storedRow(response.body.token.id)).toMatchObject(values);
  });

  it.each([1, 31_536_000])("accepts expires_in %i", async (expiresIn) => {
    const response = await storeJson(tokenBody({ expires_in: expiresIn }));
    expect(response.status).toBe(201);
    expect((await storedRow(response.body.token.id)).expires_in).toBe(expiresIn);
  });

  it.each(["application/json; charset=utf-8", "Application/JSON"])("accepts content-type %s", async (contentType) => {
    const response = await storeRaw(JSON.stringify(tokenBody()), { "content-type": contentType });
    expect(response.status).toBe(201);
  });

  it("accepts a lower-case bearer scheme", async () => {
    const response = await backend.call("users", { headers: { authorization: `bearer ${token}` } });
    expect(response.status).toBe(200);
  });

  it("accepts a 128-character sub", async () => {
    const uid = "u".repeat(128);
    const response = await backend.call("users", { method: "POST", token: await backend.token(uid) });
    expect(response.status).toBe(201);
    expect(response.body.user.firebase_uid).toBe(uid);
  });

  const sqlLike = {
    access_token: "'; DROP TABLE dexcom_tokens; --",
    refresh_token: "\" OR 1=1; DELETE FROM users WHERE ''='",
    token_type: "Bearer'); --",
    scope: "offline_access' OR 'x'='x $1 %s \\x00 ${jndi:ldap://x}",
    dexcom_user_id: "dexcom'); TRUNCATE users; --",
  };

  it("stores SQL-like strings verbatim", async () => {
    const response = await storeJson(tokenBody({ ...sqlLike, expires_in: 600 }));
    expect(response.status).toBe(201);
    expect(response.body.token).toMatchObject({ token_type: sqlLike.token_type, scope: sqlLike.scope });
    const row = await storedRow(response.body.token.id);
    expect(row).toMatchObject({ token_type: sqlLike.token_type, scope: sqlLike.scope, dexcom_user_id: sqlLike.dexcom_user_id, is_revoked: false });
    expect(row.access).toBe(sqlLike.access_token);
    expect(row.refresh).toBe(sqlLike.refresh_token);
    expect((await db().query("SELECT 1 FROM users")).length).toBeGreaterThan(0);
  });

  const unicode = {
    access_token: "🩸📈 glucose 👨‍👩‍👧 مرحبا بالعالم",
    refresh_token: "שלום עולם \u202Eevil\u202C e\u0301 日本語 🇯🇵",
    token_type: "Bearer 🔑",
    scope: "offline_access נתונים 🩺",
    dexcom_user_id: "dexcom-مستخدم-😀",
  };

  it("stores unicode (emoji, RTL text, combining marks) intact", async () => {
    const response = await storeJson(tokenBody(unicode));
    expect(response.status).toBe(201);
    expect(response.body.token).toMatchObject({ token_type: unicode.token_type, scope: unicode.scope });
    const row = await storedRow(response.body.token.id);
    expect(row).toMatchObject({ token_type: unicode.token_type, scope: unicode.scope, dexcom_user_id: unicode.dexcom_user_id });
    expect(row.access).toBe(unicode.access_token);
    expect(row.refresh).toBe(unicode.refresh_token);
  });

  it("accepts a token_type of 25 emoji (50 UTF-16 units, the limit)", async () => {
    const tokenType = "😀".repeat(25);
    const response = await storeJson(tokenBody({ token_type: tokenType }));
    expect(response.status).toBe(201);
    expect((await storedRow(response.body.token.id)).token_type).toBe(tokenType);
  });
});
