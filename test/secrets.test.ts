// "No response, log line or error message ever contains an access or refresh token, encrypted or
// not": a realistic session is run while every log line, response body and response header is
// collected, and then searched for every secret involved, including the callers' ID tokens.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKeyRing, type KeyRing } from "../shared/crypto/key-ring.ts";
import { startTestBackend, type CallOptions, type CallResult, type TestBackend } from "./support/backend.ts";
import { headerText, tokenBody } from "./support/contract-helpers.ts";

let backend: TestBackend;
let ring: KeyRing;
/** Every response body and header block of the session. */
const seen: string[] = [];
/** Plaintext Dexcom tokens posted during the session, successfully or not. */
const dexcomSecrets: string[] = [];
/** Every ID token sent in an Authorization header. */
const idTokens: string[] = [];
/** Ids of the stored rows with the tokens that were posted for them. */
const stored: { id: number; access: string; refresh: string }[] = [];

const UID = "secret-keeper-uid";

async function call(fn: string, options: CallOptions = {}): Promise<CallResult> {
  if (options.token !== undefined) idTokens.push(options.token);
  const authorization = options.headers?.["authorization"];
  if (authorization !== undefined) idTokens.push(authorization.replace(/^Bearer\s+/i, ""));
  const result = await backend.call(fn, options);
  seen.push(result.text, headerText(result.headers));
  return result;
}

/** Distinctive values, so a search cannot miss them or hit something else. */
const secret = (kind: string, n: number) => {
  const value = `${kind}-${n}-${crypto.randomUUID()}-SECRET`;
  dexcomSecrets.push(value);
  return value;
};

beforeAll(async () => {
  backend = await startTestBackend();
  ring = await loadKeyRing({ ENCRYPTION_KEY: backend.encryptionKey });
  const token = await backend.token(UID, { email: "secret.keeper@example.com" });

  expect((await call("users", { method: "POST", token })).status).toBe(201);
  for (const n of [1, 2, 3]) {
    const access = secret("access", n);
    const refresh = secret("refresh", n);
    const response = await call("dexcom-tokens", {
      method: "POST",
      token,
      json: tokenBody({ access_token: access, refresh_token: refresh, expires_in: 7200, dexcom_user_id: "secret-keeper-dexcom" }),
    });
    expect(response.status).toBe(201);
    stored.push({ id: response.body.token.id, access, refresh });
  }
  expect((await call("dexcom-tokens", { token })).status).toBe(200);

  // Stores that fail validation: each error must name the field without echoing the value.
  const failures: Record<string, unknown>[] = [
    { access_token: secret("access", 4) + "x".repeat(4096), refresh_token: secret("refresh", 4) },
    { access_token: secret("access", 5), refresh_token: secret("refresh", 5), expires_in: "3600" },
    { access_token: secret("access", 6), refresh_token: secret("refresh", 6), surplus: true },
    { access_token: secret("access", 7), refresh_token: `${secret("refresh", 7)}\u0000` },
    { access_token: secret("access", 8), refresh_token: secret("refresh", 8), token_type: "t".repeat(51) },
  ];
  for (const body of failures) {
    const response = await call("dexcom-tokens", { method: "POST", token, json: tokenBody(body) });
    expect(response.status).toBe(400);
  }
  // Not JSON at all, with a secret inside.
  const notJson = `{"access_token": "${secret("access", 9)}", "refresh_token": "${secret("refresh", 9)}"`;
  expect((await call("dexcom-tokens", { method: "POST", token, body: notJson, headers: { "content-type": "application/json" } })).status).toBe(400);
  // Wrong media type, with a secret inside.
  const plain = JSON.stringify(tokenBody({ access_token: secret("access", 10), refresh_token: secret("refresh", 10) }));
  expect((await call("dexcom-tokens", { method: "POST", token, body: plain, headers: { "content-type": "text/plain" } })).status).toBe(415);

  // A forged token and an expired one, both carrying a store.
  const forged = await backend.keys.hs256Token({ sub: UID });
  const forgedStore = tokenBody({ access_token: secret("access", 11), refresh_token: secret("refresh", 11) });
  expect((await call("dexcom-tokens", { method: "POST", token: forged, json: forgedStore })).body.error).toBe("invalid_token");
  const now = Math.floor(Date.now() / 1000);
  const expired = await backend.token(UID, { iat: now - 7200, exp: now - 3600 });
  const expiredStore = tokenBody({ access_token: secret("access", 12), refresh_token: secret("refresh", 12) });
  expect((await call("dexcom-tokens", { method: "POST", token: expired, json: expiredStore })).body.error).toBe("token_expired");
  expect((await call("users", { headers: { authorization: "Bearer not.a-valid.token-SECRET" } })).body.error).toBe("invalid_token");

  const revoked = await call("dexcom-tokens", { method: "DELETE", token });
  expect(revoked.body).toEqual({ revoked: 1 });
  expect((await call("dexcom-tokens", { token })).body).toEqual({ connected: false, token: null });
  expect((await call("users", { token })).status).toBe(200);
});
afterAll(() => backend.close());

async function encryptedValues(): Promise<string[]> {
  const rows = await backend.database.db.query<{ access_token_encrypted: string; refresh_token_encrypted: string }>(
    "SELECT access_token_encrypted, refresh_token_encrypted FROM dexcom_tokens",
  );
  return rows.flatMap((row) => [row.access_token_encrypted, row.refresh_token_encrypted]);
}

function leaks(haystacks: readonly string[], needles: readonly string[]): string[] {
  return needles.filter((needle) => haystacks.some((haystack) => haystack.includes(needle)));
}

describe("secrets in a realistic session", () => {
  it("collected something to search", async () => {
    expect(seen.length).toBeGreaterThan(20);
    expect(backend.logs.length).toBeGreaterThan(10);
    expect(dexcomSecrets.length).toBe(24);
    expect(await encryptedValues()).toHaveLength(6);
  });

  it("the search finds what is there (the caller's email and uid)", () => {
    expect(leaks(seen, ["secret.keeper@example.com"])).toHaveLength(1);
    expect(leaks(backend.logs, [UID])).toHaveLength(1);
  });

  it("no response body or header contains a plaintext access or refresh token", () => {
    expect(leaks(seen, dexcomSecrets)).toEqual([]);
  });

  it("no log line contains a plaintext access or refresh token", () => {
    expect(leaks(backend.logs, dexcomSecrets)).toEqual([]);
  });

  it("no response or log line contains an encrypted token from the table", async () => {
    const encrypted = await encryptedValues();
    expect(leaks(seen, encrypted)).toEqual([]);
    expect(leaks(backend.logs, encrypted)).toEqual([]);
  });

  it("no response or log line contains an Authorization header value", () => {
    expect(idTokens.length).toBeGreaterThan(10);
    expect(leaks(seen, idTokens)).toEqual([]);
    expect(leaks(backend.logs, idTokens)).toEqual([]);
  });

  it("no log line contains a token's signature or payload part", () => {
    const parts = idTokens.flatMap((idToken) => idToken.split(".").slice(1)).filter((part) => part.length >= 16);
    expect(leaks(backend.logs, parts)).toEqual([]);
  });

  it("the failed sign-ins were logged, by reason only", () => {
    const reasons = backend.logs.map((line) => JSON.parse(line)).filter((entry) => entry.event === "auth_failed").map((entry) => entry.reason);
    expect(reasons.length).toBeGreaterThanOrEqual(3);
  });
});

describe("stored tokens", () => {
  it("decrypt with the configured key to exactly what was posted", async () => {
    const decoder = new TextDecoder("utf-8", { fatal: true });
    for (const { id, access, refresh } of stored) {
      const [row] = await backend.database.db.query<{ access_token_encrypted: string; refresh_token_encrypted: string }>(
        "SELECT access_token_encrypted, refresh_token_encrypted FROM dexcom_tokens WHERE id = $1",
        [id],
      );
      expect(decoder.decode(await ring.decrypt(row!.access_token_encrypted))).toBe(access);
      expect(decoder.decode(await ring.decrypt(row!.refresh_token_encrypted))).toBe(refresh);
    }
  });

  it("are not stored in plaintext", async () => {
    const rows = await backend.database.db.query("SELECT * FROM dexcom_tokens");
    expect(leaks([JSON.stringify(rows)], dexcomSecrets)).toEqual([]);
  });

  it("record the ring's primary key id in encryption_key_id", async () => {
    const rows = await backend.database.db.query<{ encryption_key_id: string | null }>("SELECT encryption_key_id FROM dexcom_tokens");
    expect(rows).toHaveLength(stored.length);
    for (const row of rows) expect(row.encryption_key_id).toBe(ring.primaryKeyId);
  });

  it("hold only the stores that succeeded", async () => {
    const rows = await backend.database.db.query<{ id: number }>("SELECT id FROM dexcom_tokens ORDER BY id");
    expect(rows.map((row) => row.id)).toEqual(stored.map((row) => row.id));
  });
});
