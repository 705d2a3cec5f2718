// Verifies Firebase ID tokens by Firebase's published checklist
// (https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library):
// RS256 signed by one of Google's securetoken keys, aud = project id, iss = securetoken URL of the
// project, a sub, and exp / iat / auth_time that make sense now. Beside that list, every registered
// claim a token carries is checked as RFC 7519 4.1 says: nbf (not before now), jti (a string).
//
// jose's compactVerify checks only the JWS (alg, crit, b64, signature); every claim is checked here.
// test/firebase-verifier-differential.test.ts holds this verifier against firebase-admin's.
//
// The signature is checked before any claim, so a forged token learns nothing from the answer, and
// expiry is checked last, so `token_expired` means "a good token, just old: refresh it and retry".
import { base64url, compactVerify, errors } from "jose";
import type { ProtectedHeaderParameters } from "jose";
import { createJwksCache, KeySetUnavailable } from "./jwks-cache.ts";
import type { JwksCache } from "./jwks-cache.ts";

export { KeySetUnavailable };

export const GOOGLE_JWKS_URL =
  "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com";

// Enough for ordinary drift between Google's clock and ours, too little to matter for expiry.
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

// Firebase ID tokens are about 1 KB; custom claims add at most 1000 bytes. Anything far larger is
// not worth decoding.
const MAX_TOKEN_LENGTH = 16_384;
const MAX_SUBJECT_LENGTH = 128;

// An app sends the same ID token for up to an hour, and RSA verification is the most expensive
// step of a request (about 0.25 ms under Deno). A token verified once is remembered, by its exact
// text, until it expires; bounded so a flood of distinct tokens cannot grow memory.
const VERIFIED_CACHE_SIZE = 10_000;

export interface FirebaseUser {
  uid: string;
  /** As in the token: not lower-cased. */
  email: string | null;
  emailVerified: boolean;
  signInProvider?: string;
}

export type TokenRejectedCode = "invalid_token" | "token_expired";

export class TokenRejected extends Error {
  readonly code: TokenRejectedCode;
  /** Short and machine-friendly, for logs: "bad_signature", "missing_claim:kid", ... */
  readonly reason: string;

  constructor(reason: string, code: TokenRejectedCode = "invalid_token") {
    super(code === "token_expired" ? "the ID token has expired" : `the ID token is not valid (${reason})`);
    this.name = "TokenRejected";
    this.code = code;
    this.reason = reason;
  }
}

export interface FirebaseVerifierOptions {
  projectId: string;
  /** Default GOOGLE_JWKS_URL. */
  jwksUrl?: string | undefined;
  /**
   * Firebase Auth emulator mode (local development only): unsigned tokens (`alg: none`) are
   * accepted, with every claim checked as usual. Signed RS256 tokens are still accepted, checked
   * against the key set as in production.
   */
  emulator?: boolean | undefined;
  fetch?: typeof fetch | undefined;
  /** Milliseconds since the epoch. */
  now?: (() => number) | undefined;
  clockToleranceSeconds?: number | undefined;
}

export interface FirebaseVerifier {
  /** Rejects with TokenRejected, or KeySetUnavailable when Google's keys cannot be had. */
  verify(idToken: string): Promise<FirebaseUser>;
}

export function createFirebaseVerifier(options: FirebaseVerifierOptions): FirebaseVerifier {
  const now = options.now ?? Date.now;
  const keys = createJwksCache({ url: options.jwksUrl ?? GOOGLE_JWKS_URL, fetch: options.fetch, now });
  const expected: ClaimExpectations = {
    audience: options.projectId,
    issuer: `https://securetoken.google.com/${options.projectId}`,
    toleranceSeconds: options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
  };
  const emulator = options.emulator === true;
  // A remembered token is served only inside the window it was valid in: from its latest
  // iat / auth_time / nbf until exp, as checkClaims judges them. Time only moves forward, but the
  // wall clock can be set back; outside the window the token is checked afresh.
  const verified = new Map<string, { user: FirebaseUser; validFrom: number; exp: number }>();

  return {
    async verify(idToken) {
      const remembered = verified.get(idToken);
      if (remembered !== undefined) {
        const nowSeconds = now() / 1000;
        if (remembered.exp <= nowSeconds - expected.toleranceSeconds) {
          verified.delete(idToken);
          throw new TokenRejected("expired", "token_expired");
        }
        if (remembered.validFrom <= nowSeconds + expected.toleranceSeconds) return { ...remembered.user };
        verified.delete(idToken);
      }
      const header = readHeader(idToken);
      const claims = header.alg === "none"
        ? readUnsigned(idToken, emulator)
        : await readSigned(idToken, header, keys);
      const { uid, validFrom, exp } = checkClaims(claims, expected, now() / 1000);
      const user = userFrom(uid, claims);
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(idToken, { user, validFrom, exp });
      return { ...user };
    },
  };
}

// The JWS Compact Serialization (RFC 7515 3.1, 2): three parts of base64url without padding,
// whitespace or line breaks. A decoder that skips stray characters (atob does) would otherwise
// take `<token> ` or `<token>==` for the token, as firebase-admin does not.
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function readHeader(idToken: string): ProtectedHeaderParameters {
  if (typeof idToken !== "string" || idToken.length > MAX_TOKEN_LENGTH || !COMPACT.test(idToken)) {
    throw new TokenRejected("malformed");
  }
  const header = decodeJson(idToken.slice(0, idToken.indexOf(".")));
  if (!isObject(header)) throw new TokenRejected("malformed");
  return header as ProtectedHeaderParameters;
}

// The emulator signs nothing: header {"alg":"none","typ":"JWT"} and an empty signature part.
function readUnsigned(idToken: string, emulator: boolean): Record<string, unknown> {
  if (!emulator) throw new TokenRejected("unsigned");
  if (!idToken.endsWith(".")) throw new TokenRejected("malformed");
  const claims = decodeJson(idToken.split(".")[1]!);
  if (!isObject(claims)) throw new TokenRejected("malformed");
  return claims;
}

// Only RS256 is ever accepted, so a token "signed" with HS256 and the public key as secret (the
// classic algorithm confusion) never reaches a key.
async function readSigned(
  idToken: string,
  header: ProtectedHeaderParameters,
  keys: JwksCache,
): Promise<Record<string, unknown>> {
  if (header.alg !== "RS256") throw new TokenRejected("wrong_algorithm");
  const kid = header.kid;
  if (typeof kid !== "string" || kid === "") throw new TokenRejected("missing_claim:kid");

  const key = await keys.getKey(kid);
  if (key === undefined) throw new TokenRejected("unknown_kid");

  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(idToken, key, { algorithms: ["RS256"] }));
  } catch (error) {
    if (error instanceof errors.JWSSignatureVerificationFailed) throw new TokenRejected("bad_signature");
    if (error instanceof errors.JOSEError) throw new TokenRejected("malformed");
    throw error;
  }
  // Claims come from the payload the signature covers, not from a second decoding of the string.
  return parseClaims(payload);
}

// UTF-8 as RFC 8259 8.1 has it for JSON: invalid bytes are an error, and a byte order mark is kept
// (so JSON.parse refuses it) rather than silently dropped.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function parseClaims(payload: Uint8Array): Record<string, unknown> {
  let claims: unknown;
  try {
    claims = JSON.parse(utf8.decode(payload));
  } catch {
    throw new TokenRejected("malformed");
  }
  if (!isObject(claims)) throw new TokenRejected("malformed");
  return claims;
}

function decodeJson(segment: string): unknown {
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(segment);
  } catch {
    throw new TokenRejected("malformed");
  }
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    throw new TokenRejected("malformed");
  }
}

interface ClaimExpectations {
  audience: string;
  issuer: string;
  toleranceSeconds: number;
}

interface CheckedClaims {
  /** The subject, the user's uid. */
  uid: string;
  /** The latest of iat, auth_time and nbf: the token is not valid before it (less the tolerance). */
  validFrom: number;
  exp: number;
}

function checkClaims(
  claims: Record<string, unknown>,
  expected: ClaimExpectations,
  nowSeconds: number,
): CheckedClaims {
  if (claims["aud"] !== expected.audience) throw new TokenRejected("wrong_audience");
  if (claims["iss"] !== expected.issuer) throw new TokenRejected("wrong_issuer");
  const uid = checkSubject(claims["sub"]);

  const exp = numericClaim(claims, "exp");
  const iat = numericClaim(claims, "iat");
  const authTime = numericClaim(claims, "auth_time");
  // RFC 7519 4.1.5 and 4.1.7: optional, but checked when present. Google's ID tokens carry neither.
  const nbf = claims["nbf"] === undefined ? -Infinity : numericClaim(claims, "nbf");
  if (claims["jti"] !== undefined && typeof claims["jti"] !== "string") throw new TokenRejected("invalid_claim:jti");

  const tolerance = expected.toleranceSeconds;
  if (iat > nowSeconds + tolerance) throw new TokenRejected("issued_in_future");
  if (authTime > nowSeconds + tolerance) throw new TokenRejected("auth_time_in_future");
  if (nbf > nowSeconds + tolerance) throw new TokenRejected("not_yet_valid");
  if (exp <= nowSeconds - tolerance) throw new TokenRejected("expired", "token_expired");
  return { uid, validFrom: Math.max(iat, authTime, nbf), exp };
}

// Text that Postgres cannot store as sent (a NUL, a lone surrogate) never comes from Google.
const UNSTORABLE = /\0|\p{Surrogate}/u;

function checkSubject(sub: unknown): string {
  if (sub === undefined) throw new TokenRejected("missing_claim:sub");
  if (typeof sub !== "string" || sub === "" || sub.length > MAX_SUBJECT_LENGTH || UNSTORABLE.test(sub)) {
    throw new TokenRejected("bad_subject");
  }
  return sub;
}

// A NumericDate (RFC 7519 2): a JSON number, and a finite one (JSON.parse reads 1e400 as Infinity).
function numericClaim(claims: Record<string, unknown>, name: string): number {
  const value = claims[name];
  if (value === undefined) throw new TokenRejected(`missing_claim:${name}`);
  if (typeof value !== "number" || !Number.isFinite(value)) throw new TokenRejected(`invalid_claim:${name}`);
  return value;
}

function userFrom(uid: string, claims: Record<string, unknown>): FirebaseUser {
  const email = claims["email"];
  if (typeof email === "string" && UNSTORABLE.test(email)) throw new TokenRejected("bad_email");
  const user: FirebaseUser = {
    uid,
    email: typeof email === "string" ? email : null,
    emailVerified: claims["email_verified"] === true,
  };
  const firebase = claims["firebase"];
  const provider = isObject(firebase) ? firebase["sign_in_provider"] : undefined;
  if (typeof provider === "string") user.signInProvider = provider;
  return user;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
