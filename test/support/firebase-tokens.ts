// Test keys and Firebase-like ID tokens. Tokens are assembled by hand rather than with SignJWT so a
// test can write any header or claim it likes, including the broken ones the verifier must refuse.
import { base64url, exportJWK, exportSPKI, generateKeyPair } from "jose";
import type { JSONWebKeySet, JWK } from "jose";

export const TEST_PROJECT_ID = "dms-test-project";

export type Claims = Record<string, unknown>;

export interface ClaimDefaults {
  projectId?: string;
  /** Milliseconds since the epoch; default Date.now(). */
  now?: number;
}

export interface TokenOptions {
  /** Header `kid`; null leaves it out. Default: the key's kid. */
  kid?: string | null;
  /** Header `alg` as written; the signature is still made as the token kind says. */
  alg?: string;
  /** More or replaced header fields; a field set to undefined or null is left out. */
  header?: Record<string, unknown>;
}

export interface TestKeys {
  kid: string;
  projectId: string;
  /** The public key set, as Google serves it: kty, n, e, kid, alg "RS256", use "sig". */
  jwks: JSONWebKeySet;
  publicJwk: JWK;
  publicKeyPem: string;
  /** The RS256 key pair itself, for tests that sign or certify by hand. */
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  /** Firebase-like claims, at the keys' clock, with overrides (undefined removes a claim). */
  claims(overrides?: Claims): Claims;
  /** An RS256 ID token signed with this key pair. */
  idToken(overrides?: Claims, options?: TokenOptions): Promise<string>;
  /** HS256 with the public key's PEM text as HMAC secret: the algorithm-confusion attack. */
  hs256Token(overrides?: Claims, options?: TokenOptions): Promise<string>;
  /** An unsigned token as the Firebase Auth emulator issues it. */
  unsignedToken(overrides?: Claims, options?: TokenOptions): string;
  /** Any header and payload, as JSON, RS256-signed with this key pair whatever the header says. */
  sign(header: Record<string, unknown>, payload: unknown): Promise<string>;
  /**
   * The two encoded parts exactly as given (any text, even not base64url), RS256-signed with this
   * key pair: for JSON that JSON.stringify cannot write (1e400, a byte order mark, bytes that are
   * not UTF-8), and for encodings the verifier must refuse.
   */
  signSegments(header: string, payload: string): Promise<string>;
}

export interface TestKeysOptions {
  kid?: string;
  projectId?: string;
  /** The clock tokens are minted by, in milliseconds; default Date.now. */
  now?: () => number;
}

export async function createTestKeys(options: TestKeysOptions = {}): Promise<TestKeys> {
  const kid = options.kid ?? `test-${crypto.randomUUID()}`;
  const projectId = options.projectId ?? TEST_PROJECT_ID;
  const now = options.now ?? Date.now;
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const publicKeyPem = await exportSPKI(publicKey);
  const hmacKey = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(publicKeyPem),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );

  const claims = (overrides?: Claims) => firebaseClaims(overrides, { projectId, now: now() });
  const sign = (header: Record<string, unknown>, payload: unknown) =>
    signed(header, payload, (input) => crypto.subtle.sign("RSASSA-PKCS1-v1_5", privateKey, input));
  const header = (alg: string, options: TokenOptions) =>
    tokenHeader({ alg: options.alg ?? alg, kid: options.kid === undefined ? kid : options.kid }, options.header);

  return {
    kid,
    projectId,
    jwks: { keys: [publicJwk] },
    publicJwk,
    publicKeyPem,
    publicKey,
    privateKey,
    claims,
    idToken: (overrides, options = {}) => sign(header("RS256", options), claims(overrides)),
    hs256Token: (overrides, options = {}) =>
      signed(header("HS256", options), claims(overrides), (input) => crypto.subtle.sign("HMAC", hmacKey, input)),
    unsignedToken: (overrides, options = {}) =>
      unsignedToken(overrides, { projectId, now: now(), header: options.header }),
    sign,
    signSegments: async (header, payload) => {
      const input = `${header}.${payload}`;
      const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", privateKey, new TextEncoder().encode(input));
      return `${input}.${base64url.encode(new Uint8Array(signature))}`;
    },
  };
}

/**
 * Claims shaped like a real Firebase ID token for a password user, signed in five minutes ago and
 * issued a minute ago. `user_id` and the identities follow an overridden `sub` and `email`.
 */
function firebaseClaims(overrides: Claims = {}, defaults: ClaimDefaults = {}): Claims {
  const projectId = defaults.projectId ?? TEST_PROJECT_ID;
  const nowSeconds = Math.floor((defaults.now ?? Date.now()) / 1000);
  const sub = "sub" in overrides ? overrides["sub"] : "test-user-1";
  const email = "email" in overrides ? overrides["email"] : "test.user@example.com";
  const iat = nowSeconds - 60;
  return withoutUndefined({
    iss: `https://securetoken.google.com/${projectId}`,
    aud: projectId,
    auth_time: nowSeconds - 300,
    user_id: sub,
    sub,
    iat,
    exp: iat + 3600,
    email,
    email_verified: true,
    firebase: { identities: { email: email === undefined ? [] : [email] }, sign_in_provider: "password" },
    ...overrides,
  });
}

/** As the Firebase Auth emulator: header {"alg":"none","typ":"JWT"}, empty signature part. */
function unsignedToken(
  overrides: Claims = {},
  options: ClaimDefaults & { header?: Record<string, unknown> | undefined } = {},
): string {
  const header = tokenHeader({ alg: "none" }, options.header);
  return `${encodeSegment(header)}.${encodeSegment(firebaseClaims(overrides, options))}.`;
}

/** base64url of the JSON text: one part of a compact JWT. */
export function encodeSegment(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

/** The union of key sets, as Google serves the old and the new key side by side during rotation. */
export function mergeJwks(...sets: JSONWebKeySet[]): JSONWebKeySet {
  return { keys: sets.flatMap((set) => set.keys) };
}

function tokenHeader(base: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return withoutUndefined({ ...base, typ: "JWT", ...extra }, { dropNull: true });
}

async function signed(
  header: Record<string, unknown>,
  payload: unknown,
  sign: (input: Uint8Array<ArrayBuffer>) => Promise<ArrayBuffer>,
): Promise<string> {
  const input = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  const signature = await sign(new TextEncoder().encode(input));
  return `${input}.${base64url.encode(new Uint8Array(signature))}`;
}

function withoutUndefined(record: Record<string, unknown>, options = { dropNull: false }): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(record).filter(([, value]) => value !== undefined && !(options.dropNull && value === null)),
  );
}
