import { setupServer } from "msw/node";
import { base64url } from "jose";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  createFirebaseVerifier,
  KeySetUnavailable,
  TokenRejected,
} from "../shared/auth/firebase-verifier.ts";
import type { FirebaseVerifier, FirebaseVerifierOptions } from "../shared/auth/firebase-verifier.ts";
import { createJwksCache } from "../shared/auth/jwks-cache.ts";
import { GOOGLE_JWKS_URL, jwksHandler } from "./support/firebase-jwks-server.ts";
import type { JwksEndpoint, JwksHandlerOptions } from "./support/firebase-jwks-server.ts";
import { createTestKeys, encodeSegment, mergeJwks, TEST_PROJECT_ID } from "./support/firebase-tokens.ts";
import { rejection } from "./support/rejection.ts";

const START = Date.parse("2026-11-27T12:00:00Z");
let clock = START;
const now = () => clock;
const seconds = (count: number) => count * 1000;

const keys = await createTestKeys({ kid: "key-1", now });
// Same kid as `keys`, different key pair: its tokens must fail the signature check.
const impostor = await createTestKeys({ kid: "key-1", now });
const rotated = await createTestKeys({ kid: "key-2", now });

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());
beforeEach(() => (clock = START));

function setup(
  endpointOptions: JwksHandlerOptions = {},
  verifierOptions: Partial<FirebaseVerifierOptions> = {},
): { endpoint: JwksEndpoint; verifier: FirebaseVerifier } {
  const endpoint = jwksHandler(keys.jwks, endpointOptions);
  server.use(endpoint.handler);
  const verifier = createFirebaseVerifier({ projectId: TEST_PROJECT_ID, now, ...verifierOptions });
  return { endpoint, verifier };
}


async function expectRejected(
  verifier: FirebaseVerifier,
  token: string,
  reason: string,
  code: "invalid_token" | "token_expired" = "invalid_token",
): Promise<void> {
  const error = await rejection(verifier.verify(token));
  expect(error).toBeInstanceOf(TokenRejected);
  expect({ code: (error as TokenRejected).code, reason: (error as TokenRejected).reason }).toEqual({ code, reason });
  if (token.length > 0) expect((error as TokenRejected).message).not.toContain(token);
}

describe("Firebase ID token verifier", () => {
  describe("accepts", () => {
    it("a valid token: uid, email as in the token, email_verified, provider", async () => {
      const { verifier } = setup();
      const token = await keys.idToken({ sub: "u1", email: "Ada.Lovelace@Example.com" });
      expect(await verifier.verify(token)).toEqual({
        uid: "u1",
        email: "Ada.Lovelace@Example.com",
        emailVerified: true,
        signInProvider: "password",
      });
    });

    it("a token without email, email_verified or firebase claims", async () => {
      const { verifier } = setup();
      const token = await keys.idToken({ email: undefined, email_verified: undefined, firebase: undefined });
      expect(await verifier.verify(token)).toEqual({ uid: "test-user-1", email: null, emailVerified: false });
    });

    it("email_verified only when it is the boolean true", async () => {
      const { verifier } = setup();
      expect((await verifier.verify(await keys.idToken({ email_verified: "true" }))).emailVerified).toBe(false);
      expect((await verifier.verify(await keys.idToken({ email_verified: false }))).emailVerified).toBe(false);
    });

    it("a 128-character sub", async () => {
      const { verifier } = setup();
      const sub = "a".repeat(128);
      expect((await verifier.verify(await keys.idToken({ sub }))).uid).toBe(sub);
    });

    it("iat and auth_time within the clock tolerance, and exp just inside it", async () => {
      const { verifier } = setup();
      const nowSeconds = clock / 1000;
      const token = await keys.idToken({ iat: nowSeconds + 5, auth_time: nowSeconds + 5, exp: nowSeconds - 4 });
      expect((await verifier.verify(token)).uid).toBe("test-user-1");
    });

    it("nbf up to now plus the clock tolerance, and a string jti", async () => {
      const { verifier } = setup();
      const nowSeconds = clock / 1000;
      for (const nbf of [nowSeconds - 3600, nowSeconds, nowSeconds + 5]) {
        expect((await verifier.verify(await keys.idToken({ nbf, jti: "id-1" }))).uid).toBe("test-user-1");
      }
    });

    it("with a configurable clock tolerance", async () => {
      const { verifier } = setup({}, { clockToleranceSeconds: 0 });
      const nowSeconds = clock / 1000;
      await expectRejected(verifier, await keys.idToken({ iat: nowSeconds + 1 }), "issued_in_future");
    });
  });

  describe("rejects", () => {
    let verifier: FirebaseVerifier;
    let endpoint: JwksEndpoint;
    beforeEach(() => ({ verifier, endpoint } = setup()));
    const nowSeconds = () => clock / 1000;

    it("a token without kid", async () => {
      await expectRejected(verifier, await keys.idToken({}, { kid: null }), "missing_claim:kid");
      await expectRejected(verifier, await keys.idToken({}, { kid: "" }), "missing_claim:kid");
      // firebase-admin tries every key for a falsy kid, and finds "key-1" under ["key-1"].
      for (const kid of [0, false, ["key-1"]]) {
        await expectRejected(verifier, await keys.idToken({}, { header: { kid } }), "missing_claim:kid");
      }
      const nullKid = encodeSegment({ alg: "RS256", kid: null });
      await expectRejected(verifier, await keys.signSegments(nullKid, encodeSegment(keys.claims())), "missing_claim:kid");
      expect(endpoint.requests).toBe(0);
    });

    it("a kid not in the key set", async () => {
      await expectRejected(verifier, await keys.idToken({}, { kid: "nope" }), "unknown_kid");
    });

    it("a wrong audience", async () => {
      await expectRejected(verifier, await keys.idToken({ aud: "other-project" }), "wrong_audience");
      await expectRejected(verifier, await keys.idToken({ aud: [TEST_PROJECT_ID] }), "wrong_audience");
      await expectRejected(verifier, await keys.idToken({ aud: undefined }), "wrong_audience");
    });

    it("a wrong issuer", async () => {
      const other = "https://securetoken.google.com/other-project";
      await expectRejected(verifier, await keys.idToken({ iss: other }), "wrong_issuer");
      await expectRejected(verifier, await keys.idToken({ iss: `${other}/` }), "wrong_issuer");
      await expectRejected(verifier, await keys.idToken({ iss: "https://accounts.google.com" }), "wrong_issuer");
    });

    it("an expired token, as token_expired", async () => {
      const token = await keys.idToken({ exp: nowSeconds() - 10 });
      await expectRejected(verifier, token, "expired", "token_expired");
      await expectRejected(verifier, await keys.idToken({ exp: nowSeconds() - 5 }), "expired", "token_expired");
    });

    it("a token that became expired as the clock moved on", async () => {
      const token = await keys.idToken();
      await verifier.verify(token);
      clock += seconds(3600);
      await expectRejected(verifier, token, "expired", "token_expired");
    });

    it("an expired token that is also wrong otherwise, as invalid_token", async () => {
      const exp = nowSeconds() - 10;
      await expectRejected(verifier, await keys.idToken({ exp, aud: "other-project" }), "wrong_audience");
      await expectRejected(verifier, await impostor.idToken({ exp }), "bad_signature");
    });

    it("iat in the future", async () => {
      await expectRejected(verifier, await keys.idToken({ iat: nowSeconds() + 60 }), "issued_in_future");
    });

    it("auth_time in the future", async () => {
      await expectRejected(verifier, await keys.idToken({ auth_time: nowSeconds() + 60 }), "auth_time_in_future");
    });

    it("a correctly signed token whose nbf lies an hour ahead", async () => {
      const token = await keys.idToken({ nbf: nowSeconds() + 3600, exp: nowSeconds() + 7200 });
      await expectRejected(verifier, token, "not_yet_valid");
      // Refused, not remembered as refused: once its time has come it is good.
      clock += seconds(3600);
      expect((await verifier.verify(token)).uid).toBe("test-user-1");
    });

    it("nbf beyond the clock tolerance", async () => {
      await expectRejected(verifier, await keys.idToken({ nbf: nowSeconds() + 6 }), "not_yet_valid");
    });

    it.each([
      ["a numeric string", () => String(nowSeconds() - 60)],
      ["a word", () => "x"],
      ["null", () => null],
      ["a boolean", () => true],
      ["an array", () => [nowSeconds() - 60]],
    ])("nbf that is %s", async (_, nbf) => {
      await expectRejected(verifier, await keys.idToken({ nbf: nbf() }), "invalid_claim:nbf");
    });

    it.each(["exp", "nbf", "iat", "auth_time"])("%s that JSON makes infinite (1e400)", async (claim) => {
      const json = JSON.stringify(keys.claims({ [claim]: undefined }));
      for (const value of ["1e400", "-1e400"]) {
        const token = await keys.signSegments(
          encodeSegment({ alg: "RS256", kid: "key-1", typ: "JWT" }),
          base64url.encode(`${json.slice(0, -1)},"${claim}":${value}}`),
        );
        await expectRejected(verifier, token, `invalid_claim:${claim}`);
      }
    });

    it("a jti that is not a string", async () => {
      for (const jti of [5, null, ["a"], {}]) {
        await expectRejected(verifier, await keys.idToken({ jti }), "invalid_claim:jti");
      }
    });

    it.each(["iat", "exp", "auth_time"])("a token without %s", async (claim) => {
      await expectRejected(verifier, await keys.idToken({ [claim]: undefined }), `missing_claim:${claim}`);
    });

    it.each(["iat", "exp", "auth_time"])("%s that is not a number", async (claim) => {
      const value = String(nowSeconds());
      await expectRejected(verifier, await keys.idToken({ [claim]: value }), `invalid_claim:${claim}`);
      await expectRejected(verifier, await keys.idToken({ [claim]: null }), `invalid_claim:${claim}`);
    });

    it("an empty, too long, or non-string sub, and a missing one", async () => {
      await expectRejected(verifier, await keys.idToken({ sub: "" }), "bad_subject");
      await expectRejected(verifier, await keys.idToken({ sub: "a".repeat(129) }), "bad_subject");
      await expectRejected(verifier, await keys.idToken({ sub: 42 }), "bad_subject");
      await expectRejected(verifier, await keys.idToken({ sub: "nul\u0000sub" }), "bad_subject");
      await expectRejected(verifier, await keys.idToken({ sub: "lone\ud800" }), "bad_subject");
      await expectRejected(verifier, await keys.idToken({ email: "a\u0000b@example.com" }), "bad_email");
      await expectRejected(verifier, await keys.idToken({ sub: undefined }), "missing_claim:sub");
    });

    it("an unsigned token outside emulator mode", async () => {
      await expectRejected(verifier, keys.unsignedToken(), "unsigned");
      expect(endpoint.requests).toBe(0);
    });

    it("HS256 signed with the public key as HMAC secret", async () => {
      await expectRejected(verifier, await keys.hs256Token(), "wrong_algorithm");
    });

    it("any algorithm but RS256 in the header", async () => {
      for (const alg of ["RS512", "PS256", "ES256", "rs256", "None"]) {
        await expectRejected(verifier, await keys.idToken({}, { alg }), "wrong_algorithm");
      }
      await expectRejected(verifier, await keys.idToken({}, { header: { alg: undefined } }), "wrong_algorithm");
    });

    it("RS256 signed by another key under a known kid", async () => {
      await expectRejected(verifier, await impostor.idToken(), "bad_signature");
    });

    it("a tampered payload", async () => {
      const [header, , signature] = (await keys.idToken({ sub: "victim" })).split(".");
      const payload = encodeSegment(keys.claims({ sub: "attacker" }));
      await expectRejected(verifier, `${header}.${payload}.${signature}`, "bad_signature");
    });

    it("a stripped or truncated signature", async () => {
      const token = await keys.idToken();
      const [header, payload, signature] = token.split(".");
      await expectRejected(verifier, `${header}.${payload}.`, "bad_signature");
      await expectRejected(verifier, `${header}.${payload}.${signature!.slice(0, -4)}`, "bad_signature");
      await expectRejected(verifier, `${header}.${payload}.${signature}!`, "malformed");
    });

    it("garbage", async () => {
      const garbage = [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "a.b.c.d.e",
        "....",
        "Bearer x.y.z",
        `${encodeSegment("just a string")}.${encodeSegment({})}.`,
        "x".repeat(20_000),
        `${(await keys.idToken()).slice(0, 40)}`,
      ];
      for (const token of garbage) await expectRejected(verifier, token, "malformed");
      // A sound header leads to the signature check, which garbage after it cannot pass.
      const header = encodeSegment({ alg: "RS256", kid: "key-1" });
      await expectRejected(verifier, `${header}.bm90LWpzb24.sig`, "bad_signature");
      await expectRejected(verifier, `${header}.not-base64!.sig`, "malformed");
    });

    it("anything but three base64url parts: whitespace, padding, base64", async () => {
      const token = await keys.idToken();
      const [header, payload, signature] = token.split(".") as [string, string, string];
      const variants = [
        `${token} `,
        `${token}\n`,
        `${header}.${payload}.${signature.slice(0, 100)} ${signature.slice(100)}`,
        `${token}==`,
        `${header}.${payload}.${signature.replaceAll("-", "+").replaceAll("_", "/")}`,
      ];
      for (const variant of variants) {
        expect(variant).not.toBe(token);
        await expectRejected(verifier, variant, "malformed");
      }
      const paddedHeader = [0, 1, 2]
        .map((spaces) => base64url.encode(`{"alg":"RS256","kid":"key-1"}${" ".repeat(spaces)}`))
        .find((part) => part.length % 4 !== 0)!;
      const padded = `${paddedHeader}${"=".repeat(4 - (paddedHeader.length % 4))}`;
      await expectRejected(verifier, await keys.signSegments(padded, encodeSegment(keys.claims())), "malformed");
    });

    it("a header or payload after a byte order mark", async () => {
      const header = JSON.stringify({ alg: "RS256", kid: "key-1", typ: "JWT" });
      const claims = JSON.stringify(keys.claims());
      const bom = "\ufeff";
      const tokens = [
        await keys.signSegments(base64url.encode(bom + header), base64url.encode(claims)),
        await keys.signSegments(base64url.encode(header), base64url.encode(bom + claims)),
      ];
      for (const token of tokens) await expectRejected(verifier, token, "malformed");
    });

    it("a crit naming an extension we do not understand, or an empty one", async () => {
      await expectRejected(verifier, await keys.idToken({}, { header: { crit: ["x-ext"], "x-ext": 1 } }), "malformed");
      await expectRejected(verifier, await keys.idToken({}, { header: { crit: [] } }), "malformed");
    });

    it("a properly signed payload that is not a JSON object", async () => {
      const header = { alg: "RS256", kid: "key-1", typ: "JWT" };
      await expectRejected(verifier, await keys.sign(header, [1, 2, 3]), "malformed");
      await expectRejected(verifier, await keys.sign(header, "text"), "malformed");
      // The claims JSON as a JSON string: firebase-admin parses it twice, we do not.
      await expectRejected(verifier, await keys.sign(header, JSON.stringify(keys.claims())), "malformed");
    });

    it("a signed token whose header makes the payload something else (b64: false)", async () => {
      const header = { alg: "RS256", kid: "key-1", b64: false, crit: ["b64"] };
      await expectRejected(verifier, await keys.sign(header, keys.claims()), "malformed");
    });

    it("without putting the token into the message", async () => {
      const token = await keys.idToken({ aud: "other-project" });
      const error = (await rejection(verifier.verify(token))) as TokenRejected;
      expect(error.message).toBe("the ID token is not valid (wrong_audience)");
      const expired = (await rejection(verifier.verify(await keys.idToken({ exp: 1 })))) as TokenRejected;
      expect(expired.message).toBe("the ID token has expired");
    });
  });

  describe("remembering verified tokens", () => {
    it("still expires a remembered token on time", async () => {
      const { verifier } = setup();
      const token = await keys.idToken({ sub: "cached", exp: Math.floor(START / 1000) + 60 });
      expect((await verifier.verify(token)).uid).toBe("cached");
      clock = START + seconds(30);
      expect((await verifier.verify(token)).uid).toBe("cached");
      clock = START + seconds(66);
      await expectRejected(verifier, token, "expired", "token_expired");
    });

    it("never serves a remembered token before its nbf, iat or auth_time when the clock is set back", async () => {
      const { verifier } = setup();
      const nowSeconds = START / 1000;
      const withNbf = await keys.idToken({ sub: "nbf", nbf: nowSeconds });
      const withIat = await keys.idToken({ sub: "iat", iat: nowSeconds, auth_time: nowSeconds - 300 });
      const withAuthTime = await keys.idToken({ sub: "auth", iat: nowSeconds - 60, auth_time: nowSeconds });
      for (const token of [withNbf, withIat, withAuthTime]) await verifier.verify(token);

      clock = START - seconds(10);
      await expectRejected(verifier, withNbf, "not_yet_valid");
      await expectRejected(verifier, withIat, "issued_in_future");
      await expectRejected(verifier, withAuthTime, "auth_time_in_future");
      // Within the tolerance they are served still.
      clock = START - seconds(5);
      expect((await verifier.verify(withNbf)).uid).toBe("nbf");
      expect((await verifier.verify(withIat)).uid).toBe("iat");
      expect((await verifier.verify(withAuthTime)).uid).toBe("auth");
    });

    it("serves a remembered token without verifying its signature again", async () => {
      const { verifier } = setup();
      const token = await keys.idToken({ sub: "fast" });
      await verifier.verify(token);
      const verify = vi.spyOn(crypto.subtle, "verify");
      try {
        for (let i = 0; i < 3; i++) expect((await verifier.verify(token)).uid).toBe("fast");
        expect(verify).not.toHaveBeenCalled();
        await verifier.verify(await keys.idToken({ sub: "another" }));
        expect(verify).toHaveBeenCalledTimes(1);
      } finally {
        verify.mockRestore();
      }
    });

    it("remembers only the exact token: a tampered copy of a verified one is checked afresh", async () => {
      const { verifier } = setup();
      const token = await keys.idToken({ sub: "cached" });
      await verifier.verify(token);
      const [header, , signature] = token.split(".");
      const forged = `${header}.${encodeSegment(keys.claims({ sub: "someone-else" }))}.${signature}`;
      await expectRejected(verifier, forged, "bad_signature");
    });

    it("does not remember a rejection", async () => {
      const { endpoint, verifier } = setup();
      const token = await rotated.idToken({ sub: "later" });
      await expectRejected(verifier, token, "unknown_kid");
      endpoint.jwks = mergeJwks(keys.jwks, rotated.jwks);
      clock = START + seconds(61);
      expect((await verifier.verify(token)).uid).toBe("later");
    });
  });

  describe("in emulator mode", () => {
    it("accepts an unsigned token with the right aud and iss, without fetching keys", async () => {
      const { verifier, endpoint } = setup({}, { emulator: true });
      const token = keys.unsignedToken({ sub: "emu-1", email: "emu@example.com" });
      expect(token.split(".")[2]).toBe("");
      expect(await verifier.verify(token)).toEqual({
        uid: "emu-1",
        email: "emu@example.com",
        emailVerified: true,
        signInProvider: "password",
      });
      expect(endpoint.requests).toBe(0);
    });

    it("checks every claim of unsigned tokens as in production", async () => {
      const { verifier } = setup({}, { emulator: true });
      const nowSeconds = clock / 1000;
      await expectRejected(verifier, keys.unsignedToken({ aud: "other-project" }), "wrong_audience");
      await expectRejected(verifier, keys.unsignedToken({ iss: "https://securetoken.google.com/x" }), "wrong_issuer");
      await expectRejected(verifier, keys.unsignedToken({ sub: "" }), "bad_subject");
      await expectRejected(verifier, keys.unsignedToken({ auth_time: undefined }), "missing_claim:auth_time");
      await expectRejected(verifier, keys.unsignedToken({ iat: nowSeconds + 60 }), "issued_in_future");
      await expectRejected(verifier, keys.unsignedToken({ exp: nowSeconds - 10 }), "expired", "token_expired");
      await expectRejected(verifier, keys.unsignedToken({ nbf: nowSeconds + 3600 }), "not_yet_valid");
      await expectRejected(verifier, keys.unsignedToken({ jti: 5 }), "invalid_claim:jti");
      await expectRejected(verifier, `${keys.unsignedToken().slice(0, -1)} .`, "malformed");
    });

    it("refuses an alg none token that carries a signature", async () => {
      const { verifier } = setup({}, { emulator: true });
      await expectRejected(verifier, `${keys.unsignedToken()}c2lnbmF0dXJl`, "malformed");
    });

    it("still verifies signed tokens against the key set", async () => {
      const { verifier, endpoint } = setup({}, { emulator: true });
      expect((await verifier.verify(await keys.idToken({ sub: "real" }))).uid).toBe("real");
      await expectRejected(verifier, await impostor.idToken(), "bad_signature");
      await expectRejected(verifier, await keys.hs256Token(), "wrong_algorithm");
      expect(endpoint.requests).toBe(1);
    });
  });

  describe("key set cache", () => {
    it("fetches the key set once for many verifications", async () => {
      const { verifier, endpoint } = setup();
      for (let i = 0; i < 20; i++) await verifier.verify(await keys.idToken({ sub: `u${i}` }));
      expect(endpoint.requests).toBe(1);
    });

    it("shares one fetch among concurrent first requests", async () => {
      const { verifier, endpoint } = setup();
      const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => keys.idToken({ sub: `u${i}` })));
      const users = await Promise.all(tokens.map((token) => verifier.verify(token)));
      expect(users.map((user) => user.uid)).toEqual(tokens.map((_, i) => `u${i}`));
      expect(endpoint.requests).toBe(1);
    });

    // [title, key set endpoint, seconds the first fetch still serves, seconds more until a refetch]
    it.each<[string, JwksHandlerOptions, number, number]>([
      ["refetches when Cache-Control max-age runs out", { cacheControl: "public, max-age=100, must-revalidate" }, 99, 1],
      ["honours Google's usual max-age", {}, 19044, 2],
      ["keeps the key set one hour without max-age", { cacheControl: null }, 3599, 2],
    ])("%s", async (_, endpointOptions, stillCached, untilRefetch) => {
      const { verifier, endpoint } = setup(endpointOptions);
      await verifier.verify(await keys.idToken());
      clock += seconds(stillCached);
      await verifier.verify(await keys.idToken());
      expect(endpoint.requests).toBe(1);
      clock += seconds(untilRefetch);
      await verifier.verify(await keys.idToken());
      expect(endpoint.requests).toBe(2);
    });

    it("refetches for unknown kids at most once per minute", async () => {
      const { verifier, endpoint } = setup();
      await verifier.verify(await keys.idToken());
      // The cooldown counts from the last fetch, whatever caused it.
      await expectRejected(verifier, await keys.idToken({}, { kid: "unknown-a" }), "unknown_kid");
      expect(endpoint.requests).toBe(1);

      clock += seconds(61);
      await expectRejected(verifier, await keys.idToken({}, { kid: "unknown-b" }), "unknown_kid");
      expect(endpoint.requests).toBe(2);
      clock += seconds(30);
      await expectRejected(verifier, await keys.idToken({}, { kid: "unknown-c" }), "unknown_kid");
      expect(endpoint.requests).toBe(2);

      clock += seconds(31);
      await expectRejected(verifier, await keys.idToken({}, { kid: "unknown-d" }), "unknown_kid");
      expect(endpoint.requests).toBe(3);
    });

    it("makes at most one fetch for a flood of random kids", async () => {
      const { verifier, endpoint } = setup();
      await verifier.verify(await keys.idToken());
      clock += seconds(61);
      const flood = await Promise.all(
        Array.from({ length: 50 }, () => keys.idToken({}, { kid: crypto.randomUUID() })),
      );
      const errors = await Promise.all(flood.map((token) => rejection(verifier.verify(token))));
      expect(errors.every((error) => (error as TokenRejected).reason === "unknown_kid")).toBe(true);
      expect(endpoint.requests).toBe(2);
      for (const token of flood.slice(0, 10)) await rejection(verifier.verify(token));
      expect(endpoint.requests).toBe(2);
      await verifier.verify(await keys.idToken());
    });

    it("picks up a rotated key after the cooldown", async () => {
      const { verifier, endpoint } = setup();
      await verifier.verify(await keys.idToken());
      const fresh = await rotated.idToken({ sub: "after-rotation" });
      await expectRejected(verifier, fresh, "unknown_kid");

      endpoint.jwks = mergeJwks(keys.jwks, rotated.jwks);
      clock += seconds(61);
      expect((await verifier.verify(fresh)).uid).toBe("after-rotation");
      expect((await verifier.verify(await keys.idToken({ sub: "old-key" }))).uid).toBe("old-key");
      expect(endpoint.requests).toBe(2);

      endpoint.jwks = rotated.jwks;
      clock += seconds(19046);
      await expectRejected(verifier, await keys.idToken(), "unknown_kid");
      expect((await verifier.verify(await rotated.idToken())).uid).toBe("test-user-1");
    });

    it("ignores keys that are not RS256 signing keys", async () => {
      const { verifier, endpoint } = setup();
      endpoint.jwks = {
        keys: [
          { ...keys.publicJwk, use: "enc" },
          { ...rotated.publicJwk, alg: "RS512" },
          { kty: "oct", kid: "hmac", k: "c2VjcmV0" },
          { kty: "RSA", kid: "broken", n: "AQAB", e: "AQAB" },
        ],
      };
      await expectRejected(verifier, await keys.idToken(), "unknown_kid");
      await expectRejected(verifier, await rotated.idToken(), "unknown_kid");
      await expectRejected(verifier, await keys.idToken({}, { kid: "hmac" }), "unknown_kid");
    });

    it("counts max-age from the response's Age", async () => {
      let fetches = 0;
      const verifier = createFirebaseVerifier({
        projectId: TEST_PROJECT_ID,
        now,
        fetch: async () => {
          fetches += 1;
          return Response.json(keys.jwks, { headers: { "cache-control": "public, max-age=100", age: "40" } });
        },
      });
      await verifier.verify(await keys.idToken());
      clock += seconds(59);
      await verifier.verify(await keys.idToken());
      expect(fetches).toBe(1);
      clock += seconds(2);
      await verifier.verify(await keys.idToken());
      expect(fetches).toBe(2);
    });

    it("gives up on a fetch that does not answer in time", async () => {
      const cache = createJwksCache({
        url: GOOGLE_JWKS_URL,
        fetchTimeoutMs: 20,
        fetch: (_, init) =>
          new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason))),
      });
      const error = await rejection(cache.getKey("key-1"));
      expect(error).toBeInstanceOf(KeySetUnavailable);
      expect((error as Error).message).toBe("cannot fetch the Firebase key set: no answer within the timeout");
    });

    it("uses an injected fetch and JWKS URL", async () => {
      const calls: string[] = [];
      const verifier = createFirebaseVerifier({
        projectId: TEST_PROJECT_ID,
        jwksUrl: "http://127.0.0.1:9/jwks.json",
        now,
        fetch: async (input) => {
          calls.push(String(input));
          return Response.json(keys.jwks);
        },
      });
      expect((await verifier.verify(await keys.idToken({ sub: "injected" }))).uid).toBe("injected");
      expect(calls).toEqual(["http://127.0.0.1:9/jwks.json"]);
    });
  });

  describe("when the key set cannot be fetched", () => {
    it.each([
      ["HTTP 500", { status: 500 }],
      ["HTTP 404", { status: 404 }],
      ["a network error", { failure: "network_error" }],
      ["a body that is not JSON", { failure: "bad_json" }],
    ] as const)("answers KeySetUnavailable on %s with no cached keys", async (_, options) => {
      const { verifier } = setup(options);
      const token = await keys.idToken();
      const error = await rejection(verifier.verify(token));
      expect(error).toBeInstanceOf(KeySetUnavailable);
      expect(error).not.toBeInstanceOf(TokenRejected);
      expect((error as Error).message).not.toContain(token);
    });

    it("answers KeySetUnavailable for JSON without a keys array", async () => {
      const { verifier, endpoint } = setup();
      endpoint.jwks = { nokeys: [] } as never;
      expect(await rejection(verifier.verify(await keys.idToken()))).toBeInstanceOf(KeySetUnavailable);
    });

    it("does not poison the cache: the next request fetches again and succeeds", async () => {
      const { verifier, endpoint } = setup({ status: 503 });
      expect(await rejection(verifier.verify(await keys.idToken()))).toBeInstanceOf(KeySetUnavailable);
      expect(await rejection(verifier.verify(await keys.idToken()))).toBeInstanceOf(KeySetUnavailable);
      expect(endpoint.requests).toBe(2);

      endpoint.status = 200;
      expect((await verifier.verify(await keys.idToken({ sub: "back" }))).uid).toBe("back");
      expect(endpoint.requests).toBe(3);
    });

    it("shares one failing fetch among concurrent requests", async () => {
      const { verifier, endpoint } = setup({ failure: "network_error" });
      const tokens = await Promise.all([keys.idToken(), keys.idToken(), keys.idToken()]);
      const errors = await Promise.all(tokens.map((token) => rejection(verifier.verify(token))));
      expect(errors.every((error) => error instanceof KeySetUnavailable)).toBe(true);
      expect(endpoint.requests).toBe(1);
    });

    it("keeps verifying with the stale key set past max-age, retrying once per minute", async () => {
      const { verifier, endpoint } = setup({ cacheControl: "max-age=100" });
      await verifier.verify(await keys.idToken());
      endpoint.status = 500;

      clock += seconds(101);
      expect((await verifier.verify(await keys.idToken({ sub: "stale" }))).uid).toBe("stale");
      expect(endpoint.requests).toBe(2);
      clock += seconds(30);
      await verifier.verify(await keys.idToken());
      await expectRejected(verifier, await impostor.idToken(), "bad_signature");
      expect(endpoint.requests).toBe(2);

      clock += seconds(31);
      endpoint.failure = "network_error";
      await verifier.verify(await keys.idToken());
      expect(endpoint.requests).toBe(3);

      clock += seconds(61);
      endpoint.failure = null;
      endpoint.status = 200;
      endpoint.jwks = mergeJwks(keys.jwks, rotated.jwks);
      expect((await verifier.verify(await rotated.idToken({ sub: "recovered" }))).uid).toBe("recovered");
      expect(endpoint.requests).toBe(4);
    });
  });
});
