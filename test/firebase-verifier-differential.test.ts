// Differential test against the reference the design names: firebase-admin's verifyIdToken and our
// verifier judge the same generated battery of ID tokens (every claim missing, mistyped, at and
// around its limits; header fields and algorithms; encodings and lengths) and must agree on accept
// or refuse. Where we are deliberately stricter the case says why, and must then be a real
// disagreement (firebase-admin accepts, we refuse), so the list cannot go stale.
//
// firebase-admin fetches Google's X.509 certificates (a JSON map kid -> PEM); msw serves
// self-signed certificates of the test keys there, and our key set at Google's JWKS URL, so both
// check the same keys. Nothing reaches the network.
//
// The clock: jsonwebtoken (under firebase-admin) reads Date.now() and compares whole seconds, so
// Date.now is frozen on a whole second for this file and our verifier is given the same instant.
// Only Date.now is replaced, no timers, so msw and the HTTP stack run as usual. Our verifier runs
// with no clock tolerance here, as firebase-admin has none, so the limits line up to the second;
// the 5 s tolerance we use in production is covered in firebase-verifier.test.ts.
import { KeyObject, X509Certificate } from "node:crypto";
import { deleteApp, initializeApp } from "firebase-admin/app";
import type { App } from "firebase-admin/app";
import { getAuth } from "firebase-admin/auth";
import type { Auth } from "firebase-admin/auth";
import { base64url } from "jose";
import { http, HttpResponse } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createFirebaseVerifier, TokenRejected } from "../shared/auth/firebase-verifier.ts";
import type { FirebaseVerifier } from "../shared/auth/firebase-verifier.ts";
import { jwksHandler } from "./support/firebase-jwks-server.ts";
import { createTestKeys, encodeSegment, mergeJwks } from "./support/firebase-tokens.ts";
import type { Claims, TestKeys } from "./support/firebase-tokens.ts";
import { selfSignedCertificate } from "./support/x509.ts";

const CERTIFICATES_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";

const NOW_MS = Math.floor(Date.now() / 1000) * 1000;
/** Now, in the seconds of NumericDate claims. */
const N = NOW_MS / 1000;

const keys = await createTestKeys({ kid: "key-1", now: () => NOW_MS });
const second = await createTestKeys({ kid: "key-2", now: () => NOW_MS });
// Under kid "key-1" too, but a key pair Google never published.
const impostor = await createTestKeys({ kid: "key-1", now: () => NOW_MS });
const PROJECT = keys.projectId;
const ISSUER = `https://securetoken.google.com/${PROJECT}`;

// Why we refuse what firebase-admin accepts.
const STRICTER = {
  requiredTimes:
    "Firebase's checklist requires exp, iat and auth_time; firebase-admin reads exp only when present, and iat " +
    "and auth_time never",
  pastTimes: "Firebase's checklist: iat and auth_time must be in the past; firebase-admin never reads them",
  numericDate:
    "RFC 7519 4.1.6: iat is a NumericDate, a number (auth_time likewise, OpenID Connect Core 2); firebase-admin " +
    "never reads them",
  finite:
    "a NumericDate is a finite number: JSON 1e400 parses as Infinity, a token that never expires or is never too early",
  jti: "RFC 7519 4.1.7: jti is a string; firebase-admin ignores jti",
  kid:
    "Firebase's checklist: kid must name one of Google's keys; firebase-admin tries every key when kid is \"\" " +
    "or another falsy value",
  kidType:
    "RFC 7515 4.1.4: kid is a string; firebase-admin looks keys up by property name, where [\"key-1\"] reads as key-1",
  crit:
    "RFC 7515 4.1.11: crit must be a non-empty list of extensions the recipient understands, or the token is " +
    "refused; jsonwebtoken ignores crit",
  b64:
    "RFC 7797: with b64 false the payload is the bytes as written, not the claims they encode; jsonwebtoken " +
    "does not know b64",
  length:
    "a Firebase ID token is 1 to 2 KB (custom claims are capped at 1000 bytes); we decode nothing longer than 16 KB",
  object:
    "RFC 7519 7.2: the claims are a JSON object; firebase-admin (jsonwebtoken's decode) parses a payload that " +
    "is a JSON string a second time",
  utf8:
    "RFC 7515 5.2, RFC 7519 7.2, RFC 8259 8.1: header and claims are UTF-8 JSON; firebase-admin reads the " +
    "header as Latin-1 and turns invalid bytes in the claims into U+FFFD",
  storable: "text Postgres cannot store as sent (NUL, lone surrogates) never comes from Google",
} as const;

type Verdict = "accept" | "refuse";

interface Case {
  name: string;
  token: () => string | Promise<string>;
  /** firebase-admin's verdict. */
  admin: Verdict;
  /** Set when we refuse what firebase-admin accepts. */
  stricter?: string;
}

const accepted = (name: string, token: Case["token"]): Case => ({ name, token, admin: "accept" });
const refused = (name: string, token: Case["token"]): Case => ({ name, token, admin: "refuse" });
const stricter = (reason: string, name: string, token: Case["token"]): Case => ({
  name,
  token,
  admin: "accept",
  stricter: reason,
});

// --- Tokens written by hand, byte for byte --------------------------------------------------------

const text = (value: string | Uint8Array) => base64url.encode(value);

const HEADER = { alg: "RS256", kid: "key-1", typ: "JWT" };

/** RS256 by `keys`, with the header and claims written as the JSON text given. */
const rawToken = (headerJson: string, claimsJson: string) => keys.signSegments(text(headerJson), text(claimsJson));

/** The default claims under a header written as the JSON text given. */
const withHeader = (headerJson: string) => rawToken(headerJson, JSON.stringify(keys.claims()));
/** The default header over claims written as the JSON text given. */
const withClaims = (claimsJson: string) => rawToken(JSON.stringify(HEADER), claimsJson);

/** The default claims with one claim written as raw JSON (a number JSON.stringify cannot write). */
function claimsWithRaw(name: string, rawJson: string): string {
  const claims = keys.claims({ [name]: undefined });
  return `${JSON.stringify(claims).slice(0, -1)},"${name}":${rawJson}}`;
}

async function hmacToken(secret: string, claims: Claims = keys.claims()): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const input = `${encodeSegment({ ...HEADER, alg: "HS256" })}.${encodeSegment(claims)}`;
  const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(signature))}`;
}

/** A genuine token grown to exactly `length` characters by a claim and a header field of its own. */
async function tokenOfLength(length: number): Promise<string> {
  const make = (padding: number, extra: number) =>
    keys.idToken({ padding: "p".repeat(padding) }, { header: { x: "x".repeat(extra) } });
  const base = (await make(0, 0)).length;
  const estimate = Math.floor(((length - base) * 3) / 4);
  for (let padding = Math.max(0, estimate - 4); padding <= estimate + 4; padding++) {
    for (let extra = 0; extra < 4; extra++) {
      const token = await make(padding, extra);
      if (token.length === length) return token;
    }
  }
  throw new Error(`no token of ${length} characters`);
}

/** Really signed with RS512 (RSASSA-PKCS1-v1_5 over SHA-512) by the key behind `key-1`. */
async function rs512Token(): Promise<string> {
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, false, [
    "sign",
  ]);
  const input = `${encodeSegment({ ...HEADER, alg: "RS512" })}.${encodeSegment(keys.claims())}`;
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(signature))}`;
}

async function genuine(): Promise<[header: string, payload: string, signature: string]> {
  return (await keys.idToken()).split(".") as [string, string, string];
}

// --- The battery ------------------------------------------------------------------------------------

/** Wrong types for a NumericDate whose right value would be `value`. */
const notNumbers = (value: number): [string, unknown][] => [
  ["a numeric string", String(value)],
  ["null", null],
  ["a boolean", true],
  ["an array", [value]],
  ["an object", {}],
];

const cases: Case[] = [
  // Genuine tokens.
  accepted("a genuine ID token", () => keys.idToken()),
  accepted("a genuine ID token signed by the other key in the set", () => second.idToken()),
  accepted("with nbf in the past and a jti", () => keys.idToken({ nbf: N - 60, jti: "a-token-id" })),
  accepted("with claims of its own beside the registered ones", () => keys.idToken({ role: "admin", n: 1 })),
  accepted("without email and firebase claims", () =>
    keys.idToken({ email: undefined, email_verified: undefined, firebase: undefined })),

  // Each required claim missing.
  ...["iss", "aud", "sub"].map((claim) => refused(`without ${claim}`, () => keys.idToken({ [claim]: undefined }))),
  ...["exp", "iat", "auth_time"].map((claim) =>
    stricter(STRICTER.requiredTimes, `without ${claim}`, () => keys.idToken({ [claim]: undefined }))),

  // iss: exactly the securetoken URL of the project.
  ...[
    ["of another project", "https://securetoken.google.com/other-project"],
    ["with a trailing slash", `${ISSUER}/`],
    ["over http", ISSUER.replace("https:", "http:")],
    ["in other case", ISSUER.toUpperCase()],
    ["of a session cookie", `https://session.firebase.google.com/${PROJECT}`],
    ["of Google accounts", "https://accounts.google.com"],
    ["empty", ""],
    ["a number", 5],
    ["null", null],
    ["an array holding the right one", [ISSUER]],
  ].map(([what, iss]) => refused(`iss ${what}`, () => keys.idToken({ iss }))),

  // aud: exactly the project id, a string.
  ...[
    ["of another project", "other-project"],
    ["in other case", PROJECT.toUpperCase()],
    ["empty", ""],
    ["an array holding the project", [PROJECT]],
    ["an array holding the project and another", [PROJECT, "other-project"]],
    ["a custom token's", "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"],
    ["a number", 5],
    ["null", null],
    ["an object", { aud: PROJECT }],
  ].map(([what, aud]) => refused(`aud ${what}`, () => keys.idToken({ aud }))),

  // sub: a non-empty string of at most 128 UTF-16 code units.
  accepted("sub of 1 character", () => keys.idToken({ sub: "a" })),
  accepted("sub of 128 characters", () => keys.idToken({ sub: "a".repeat(128) })),
  accepted("sub of 64 emoji (128 UTF-16 code units)", () => keys.idToken({ sub: "😀".repeat(64) })),
  accepted("sub of 128 accented letters", () => keys.idToken({ sub: "é".repeat(128) })),
  refused("sub of 129 characters", () => keys.idToken({ sub: "a".repeat(129) })),
  refused("sub of 65 emoji (130 UTF-16 code units)", () => keys.idToken({ sub: "😀".repeat(65) })),
  refused("sub empty", () => keys.idToken({ sub: "" })),
  ...[
    ["a number", 5],
    ["null", null],
    ["a boolean", true],
    ["an array", ["u1"]],
    ["an object", { id: "u1" }],
  ].map(([what, sub]) => refused(`sub ${what}`, () => keys.idToken({ sub }))),
  stricter(STRICTER.storable, "sub with a NUL", () => keys.idToken({ sub: "a\u0000b" })),
  stricter(STRICTER.storable, "sub with a lone surrogate", () => keys.idToken({ sub: "a\ud800" })),
  stricter(STRICTER.storable, "email with a NUL", () => keys.idToken({ email: "a\u0000b@example.com" })),

  // exp: a NumericDate after now.
  ...([
    [N - 3600, "refuse"],
    [N - 1, "refuse"],
    [N, "refuse"],
    [N + 0.5, "accept"],
    [N + 1, "accept"],
    [N + 3600, "accept"],
    [1e15, "accept"],
    [0, "refuse"],
    [-1, "refuse"],
  ] as const).map(([exp, verdict]) =>
    (verdict === "accept" ? accepted : refused)(`exp ${when(exp)}`, () => keys.idToken({ exp }))),
  ...notNumbers(N + 3600).map(([what, exp]) => refused(`exp ${what}`, () => keys.idToken({ exp }))),
  stricter(STRICTER.finite, "exp 1e400 (Infinity)", () => withClaims(claimsWithRaw("exp", "1e400"))),

  // nbf: a NumericDate not after now, when present.
  ...([
    [N - 3600, "accept"],
    [N - 1, "accept"],
    [N, "accept"],
    [N + 0.5, "refuse"],
    [N + 1, "refuse"],
    [N + 5, "refuse"],
    [N + 3600, "refuse"],
    [0, "accept"],
  ] as const).map(([nbf, verdict]) =>
    (verdict === "accept" ? accepted : refused)(`nbf ${when(nbf)}`, () => keys.idToken({ nbf }))),
  ...notNumbers(N - 60).map(([what, nbf]) => refused(`nbf ${what}`, () => keys.idToken({ nbf }))),
  refused("nbf a word", () => keys.idToken({ nbf: "x" })),
  refused("nbf an hour ahead, exp in two", () => keys.idToken({ nbf: N + 3600, exp: N + 7200 })),
  stricter(STRICTER.finite, "nbf -1e400 (-Infinity)", () =>
    withClaims(claimsWithRaw("nbf", "-1e400"))),

  // iat and auth_time: NumericDates not after now.
  ...["iat", "auth_time"].flatMap((claim) => [
    accepted(`${claim} now`, () => keys.idToken({ [claim]: N })),
    accepted(`${claim} now-1`, () => keys.idToken({ [claim]: N - 1 })),
    accepted(`${claim} 0`, () => keys.idToken({ [claim]: 0 })),
    stricter(STRICTER.pastTimes, `${claim} now+0.5`, () => keys.idToken({ [claim]: N + 0.5 })),
    stricter(STRICTER.pastTimes, `${claim} now+1`, () => keys.idToken({ [claim]: N + 1 })),
    stricter(STRICTER.pastTimes, `${claim} now+3600`, () => keys.idToken({ [claim]: N + 3600 })),
    ...notNumbers(N - 60).map(([what, value]) =>
      stricter(STRICTER.numericDate, `${claim} ${what}`, () => keys.idToken({ [claim]: value }))),
    stricter(STRICTER.finite, `${claim} 1e400 (Infinity)`, () =>
      withClaims(claimsWithRaw(claim, "1e400"))),
    stricter(STRICTER.finite, `${claim} -1e400 (-Infinity)`, () =>
      withClaims(claimsWithRaw(claim, "-1e400"))),
  ]),

  // jti: a string, when present.
  accepted("jti empty", () => keys.idToken({ jti: "" })),
  ...[
    ["a number", 5],
    ["null", null],
    ["an array", ["a"]],
    ["an object", {}],
  ].map(([what, jti]) => stricter(STRICTER.jti, `jti ${what}`, () => keys.idToken({ jti }))),

  // alg: RS256 only.
  ...["RS384", "RS512", "PS256", "ES256", "HS256", "rs256", "RS256 ", "", "none"].map((alg) =>
    refused(`alg ${JSON.stringify(alg)} over an RS256 signature`, () => keys.idToken({}, { alg }))),
  refused("RS512, really signed with RS512 by a key in the set", () => rs512Token()),
  refused("alg missing", () => keys.idToken({}, { header: { alg: undefined } })),
  refused("alg a number", () => keys.idToken({}, { header: { alg: 256 } })),
  refused("alg none, unsigned, without kid", () => keys.unsignedToken()),
  refused("alg none, unsigned, with a known kid", () => keys.unsignedToken({}, { header: { kid: "key-1" } })),
  refused("HS256 keyed with the public key's PEM", () => keys.hs256Token()),
  refused("HS256 keyed with the JWK's modulus", () => hmacToken(keys.publicJwk.n!)),
  refused("HS256 without kid", () => keys.hs256Token({}, { kid: null })),

  // kid: one of the keys in the set.
  refused("kid missing", () => keys.idToken({}, { kid: null })),
  refused("kid unknown", () => keys.idToken({}, { kid: "no-such-key" })),
  refused("kid of the other key in the set", () => keys.idToken({}, { kid: "key-2" })),
  refused("kid in other case", () => keys.idToken({}, { kid: "KEY-1" })),
  refused("kid __proto__", () => keys.idToken({}, { kid: "__proto__" })),
  refused("kid a number", () => keys.idToken({}, { header: { kid: 1 } })),
  stricter(STRICTER.kidType, "kid an array holding a known kid", () =>
    keys.idToken({}, { header: { kid: ["key-1"] } })),
  refused("kid of 10 000 characters", () => keys.idToken({}, { kid: "k".repeat(10_000) })),
  stricter(STRICTER.kid, "kid empty", () => keys.idToken({}, { kid: "" })),
  stricter(STRICTER.kid, "kid null", () => withHeader(JSON.stringify({ ...HEADER, kid: null }))),
  stricter(STRICTER.kid, "kid 0", () => keys.idToken({}, { header: { kid: 0 } })),
  stricter(STRICTER.kid, "kid false", () => keys.idToken({}, { header: { kid: false } })),

  // typ, cty and other header fields: ignored (RFC 7515 4.1.9, 4.1.10, 4: unknown ones ignored).
  ...[undefined, "jwt", "at+jwt", "application/jwt", "JOSE", 5].map((typ) =>
    accepted(`typ ${JSON.stringify(typ) ?? "missing"}`, () => keys.idToken({}, { header: { typ } }))),
  accepted("cty JWT", () => keys.idToken({}, { header: { cty: "JWT" } })),
  accepted("an unknown header field", () => keys.idToken({}, { header: { x: { y: 1 } } })),
  accepted("jku and x5u pointing elsewhere (never followed)", () =>
    keys.idToken({}, { header: { jku: "https://attacker.example/jwks", x5u: "https://attacker.example/cert" } })),
  refused("an impostor's key embedded as jwk, signed with it", () =>
    impostor.idToken({}, { header: { jwk: impostor.publicJwk } })),
  refused("an impostor's key behind jku, signed with it", () =>
    impostor.idToken({}, { header: { jku: "https://attacker.example/jwks" } })),
  accepted("alg written twice, RS256 last (the last member wins)", () =>
    withHeader('{"alg":"HS256","alg":"RS256","kid":"key-1","typ":"JWT"}')),

  // crit (RFC 7515 4.1.11) and b64 (RFC 7797).
  accepted("crit b64 with b64 true", () => keys.idToken({}, { header: { crit: ["b64"], b64: true } })),
  accepted("b64 false without crit (b64 is then ignored)", () => keys.idToken({}, { header: { b64: false } })),
  stricter(STRICTER.b64, "crit b64 with b64 false", () => keys.idToken({}, { header: { crit: ["b64"], b64: false } })),
  stricter(STRICTER.crit, "crit naming an unknown extension", () =>
    keys.idToken({}, { header: { crit: ["x-ext"], "x-ext": 1 } })),
  stricter(STRICTER.crit, "crit naming a registered claim", () => keys.idToken({}, { header: { crit: ["exp"] } })),
  stricter(STRICTER.crit, "crit empty", () => keys.idToken({}, { header: { crit: [] } })),
  stricter(STRICTER.crit, "crit not a list", () => keys.idToken({}, { header: { crit: "x-ext", "x-ext": 1 } })),

  // Who signed it.
  refused("signed by a key Google never published, under a known kid", () => impostor.idToken()),
  refused("a tampered payload", async () => {
    const [header, , signature] = await genuine();
    return `${header}.${encodeSegment(keys.claims({ sub: "someone-else" }))}.${signature}`;
  }),
  refused("the signature of another token", async () => {
    const [header, payload] = await genuine();
    const [, , signature] = (await keys.idToken({ sub: "other" })).split(".");
    return `${header}.${payload}.${signature}`;
  }),
  refused("an empty signature", async () => `${(await genuine()).slice(0, 2).join(".")}.`),
  refused("a truncated signature", async () => {
    const [header, payload, signature] = await genuine();
    return `${header}.${payload}.${signature.slice(0, -4)}`;
  }),
  refused("a signature with bytes appended", async () => `${await keys.idToken()}AAAA`),
  accepted("a signature whose last character carries stray unused bits", async () => {
    const [header, payload, signature] = await genuine();
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 256 bytes in 342 characters: the last character's low 4 bits are unused.
    const last = alphabet[alphabet.indexOf(signature.at(-1)!) ^ 0b0001]!;
    return `${header}.${payload}.${signature.slice(0, -1)}${last}`;
  }),

  // Encoding and structure.
  ...["", "x", "x.y", "x.y.z", "..", "Bearer x.y.z"].map((token) =>
    refused(`the text ${JSON.stringify(token)}`, () => token)),
  refused("a genuine token and a fourth part", async () => `${await keys.idToken()}.${(await genuine())[2]}`),
  refused("five parts, as a JWE", async () => `${await keys.idToken()}.x.y`),
  refused("the header and payload only", async () => (await genuine()).slice(0, 2).join(".")),
  refused("a genuine token with a trailing space", async () => `${await keys.idToken()} `),
  refused("a genuine token with a trailing newline", async () => `${await keys.idToken()}\n`),
  refused("a genuine token with a leading space", async () => ` ${await keys.idToken()}`),
  refused("a space inside the signature", async () => {
    const [header, payload, signature] = await genuine();
    return `${header}.${payload}.${signature.slice(0, 100)} ${signature.slice(100)}`;
  }),
  refused("a signature with = padding", async () => `${await keys.idToken()}==`),
  refused("a signature in base64, not base64url", async () => {
    const [header, payload, signature] = await genuine();
    return `${header}.${payload}.${signature.replaceAll("-", "+").replaceAll("_", "/")}`;
  }),
  refused("a header with = padding", () => {
    // A space or two after the JSON so that its base64 needs padding.
    const header = [0, 1, 2]
      .map((spaces) => text(JSON.stringify(HEADER) + " ".repeat(spaces)))
      .find((part) => part.length % 4 !== 0)!;
    return keys.signSegments(header + "=".repeat(4 - (header.length % 4)), encodeSegment(keys.claims()));
  }),
  refused("a header that is not JSON", () => withHeader("{alg: RS256}")),
  refused("a header that is a JSON array", () => withHeader(JSON.stringify([HEADER]))),
  refused("a header that is a JSON string", () => withHeader(JSON.stringify("RS256"))),
  refused("a header after a byte order mark", () =>
    withHeader(`\ufeff${JSON.stringify(HEADER)}`)),
  stricter(STRICTER.utf8, "a header with a byte that is not UTF-8 in a field of its own", () => {
    const header = new TextEncoder().encode(JSON.stringify({ ...HEADER, x: "@" }));
    header[header.lastIndexOf("@".charCodeAt(0))] = 0xff;
    return keys.signSegments(text(header), encodeSegment(keys.claims()));
  }),
  refused("a header in UTF-16", () =>
    keys.signSegments(text(Buffer.from(JSON.stringify(HEADER), "utf16le")), encodeSegment(keys.claims()))),
  ...[
    ["not JSON", "{sub: u1}"],
    ["a JSON array", JSON.stringify([keys.claims()])],
    ["JSON null", "null"],
    ["a JSON number", "1"],
    ["empty", ""],
    ["claims after a byte order mark", `\ufeff${JSON.stringify(keys.claims())}`],
    ["claims and trailing text", `${JSON.stringify(keys.claims())}x`],
  ].map(([what, payload]) => refused(`a payload that is ${what}`, () => withClaims(payload!))),
  stricter(STRICTER.object, "a payload that is the claims as a JSON string", () =>
    withClaims(JSON.stringify(JSON.stringify(keys.claims())))),
  accepted("a payload of pretty-printed JSON", () => withClaims(JSON.stringify(keys.claims(), null, 2))),
  accepted("a payload with sub written twice (the last member wins)", () =>
    withClaims(`{"sub":"first",${JSON.stringify(keys.claims({ sub: "second" })).slice(1)}`)),
  stricter(STRICTER.utf8, "a payload with a byte that is not UTF-8 in a claim of its own", () => {
    const claims = new TextEncoder().encode(JSON.stringify(keys.claims({ note: "@" })));
    const at = claims.lastIndexOf("@".charCodeAt(0));
    claims[at] = 0xff;
    return keys.signSegments(encodeSegment(HEADER), text(claims));
  }),

  // Lengths.
  accepted("a token of 16 384 characters", () => tokenOfLength(16_384)),
  stricter(STRICTER.length, "a token of 16 385 characters", () => tokenOfLength(16_385)),
  stricter(STRICTER.length, "a token of 100 000 characters", () => tokenOfLength(100_000)),
];

/** "now", "now+1", "now-3600", or the number itself when it is nowhere near now. */
function when(seconds: number): string {
  const difference = seconds - N;
  if (Math.abs(difference) > 1e6) return String(seconds);
  return difference === 0 ? "now" : `now${difference > 0 ? "+" : ""}${difference}`;
}

// --- The two verifiers --------------------------------------------------------------------------------

const server = setupServer();
let certificateRequests = 0;
let app: App;
let admin: Auth;
let ours: FirebaseVerifier;

beforeAll(async () => {
  vi.spyOn(Date, "now").mockReturnValue(NOW_MS);
  // firebase-admin's emulator mode accepts unsigned tokens; the test must judge the real mode.
  vi.stubEnv("FIREBASE_AUTH_EMULATOR_HOST", undefined);

  const certificates: Record<string, string> = {};
  for (const key of [keys, second]) {
    const pem = await selfSignedCertificate(key.publicKey, key.privateKey, {
      commonName: "securetoken.system.gserviceaccount.com",
    });
    // What firebase-admin will read out of it is the test key itself.
    expect(new X509Certificate(pem).verify(KeyObject.from(key.publicKey))).toBe(true);
    certificates[key.kid] = pem;
  }
  server.use(
    http.get(CERTIFICATES_URL, () => {
      certificateRequests += 1;
      return HttpResponse.json(certificates, { headers: { "cache-control": "public, max-age=19045" } });
    }),
    jwksHandler(mergeJwks(keys.jwks, second.jwks)).handler,
  );
  server.listen({ onUnhandledRequest: "error" });

  // verifyIdToken needs only the project id; the credential is never asked for a token.
  const credential = { getAccessToken: () => Promise.reject(new Error("no credential in tests")) };
  app = initializeApp({ projectId: PROJECT, credential }, `differential-${crypto.randomUUID()}`);
  admin = getAuth(app);
  ours = createFirebaseVerifier({ projectId: PROJECT, now: () => NOW_MS, clockToleranceSeconds: 0 });
});

afterAll(async () => {
  await deleteApp(app);
  server.close();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** Accept (with the uid) or refuse; anything else (a network error, a bug) fails the test. */
async function adminJudges(token: string): Promise<{ verdict: Verdict; uid?: string }> {
  try {
    return { verdict: "accept", uid: (await admin.verifyIdToken(token)).uid };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "auth/argument-error" || code === "auth/id-token-expired") return { verdict: "refuse" };
    // Tripping over it is refusing it too: jws parses the payload of a `typ: "JWT"` token with a
    // bare JSON.parse, and firebase-admin reads `payload.aud` of whatever that gave.
    if (error instanceof SyntaxError || error instanceof TypeError) return { verdict: "refuse" };
    throw error;
  }
}

async function weJudge(token: string): Promise<{ verdict: Verdict; uid?: string }> {
  try {
    return { verdict: "accept", uid: (await ours.verify(token)).uid };
  } catch (error) {
    if (error instanceof TokenRejected) return { verdict: "refuse" };
    throw error;
  }
}

describe("firebase-admin's verifyIdToken and ours agree", () => {
  it("on a battery without duplicate names", () => {
    const names = cases.map((c) => c.name);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
    expect(Date.now()).toBe(NOW_MS);
  });

  it.each(cases)("$name", async ({ token: make, admin: expected, stricter: reason }) => {
    const token = await make();
    const [theirs, mine] = [await adminJudges(token), await weJudge(token)];
    expect(theirs.verdict, "firebase-admin's verdict").toBe(expected);
    expect(mine.verdict, reason ? `we are stricter: ${reason}` : "our verdict").toBe(reason ? "refuse" : expected);
    if (mine.verdict === "accept") expect(mine.uid).toBe(theirs.uid);
  });

  it("with the certificates fetched once, and nothing else fetched", () => {
    expect(certificateRequests).toBe(1);
  });
});
