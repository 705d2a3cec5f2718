// The reference the HTTP benches hold our endpoints against: a bare `Deno.serve` + postgres.js
// handler for each benched endpoint, run in its own process as `npm run serve` is. It sends the
// same SQL (it calls the very store functions the endpoints call), through the same driver with
// the same options (prepare: false, no type lookup, the built-in array types, DATABASE_POOL_SIZE
// connections), and answers JSON of the same shape; and it has none of our layers: the caller is
// the ID token's `sub`, decoded without verifying anything; no validation, no log line, no
// deadlines or pool line of our own, no CORS headers or request id.
//
// Env: DATABASE_URL, DATABASE_POOL_SIZE (default 10), PORT; for /dexcom-egvs also ENCRYPTION_KEY
// (its access token is stored encrypted: decrypting it is part of the work), DEXCOM_API_BASE_URL
// and DEXCOM_CALLS_PER_HOUR (default 50000).
// Run by bench/server.ts's withServer({ script: BARE_SERVER }); not meant for anything else.
import postgres from "postgres";
import { loadKeyRing } from "../shared/crypto/key-ring.ts";
import type { Queryable } from "../shared/db/database.ts";
import { builtinArrayTypes } from "../shared/db/array-types.ts";
import { callBudget } from "../shared/dexcom/call-budget.ts";
import { connectionByUid } from "../shared/dexcom/token-store.ts";
import { activeToken, storeToken } from "../shared/dexcom-tokens/store.ts";
import { glucoseReadings } from "../shared/glucose/readings.ts";
import { glucoseSummary } from "../shared/glucose/summary.ts";
import { registerUser } from "../shared/users/store.ts";

const env = Deno.env.toObject();
const sql = postgres(env.DATABASE_URL!, {
  max: Number(env.DATABASE_POOL_SIZE ?? 10),
  prepare: false,
  fetch_types: false,
  types: builtinArrayTypes(),
  onnotice: () => {},
} as unknown as postgres.Options<{}>);
const db: Queryable = {
  query: <T>(text: string, params: readonly unknown[] = []) =>
    sql.unsafe(text, params as postgres.ParameterOrJSON<never>[]) as unknown as Promise<T[]>,
  exec: async (script: string) => void await sql.unsafe(script),
};
const keyRing = env.ENCRYPTION_KEY ? await loadKeyRing(env) : null;
const spendDexcomCall = callBudget(db, Number(env.DEXCOM_CALLS_PER_HOUR ?? 50_000));
// POST /dexcom-tokens stores text of a Fernet token's length in place of each token: ours encrypts, this does not.
const ciphertextFor = (plaintext: string) =>
  "x".repeat(Math.ceil((1 + 8 + 16 + (Math.floor(plaintext.length / 16) + 1) * 16 + 32) / 3) * 4);

type Handler = (request: Request, claims: Claims, url: URL) => Promise<Response>;

interface Claims {
  sub: string;
  email?: string;
  email_verified?: boolean;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });

const ROUTES: Record<string, Handler> = {
  "POST /users": async (_request, claims) => {
    const { outcome, user } = await registerUser(db, {
      uid: claims.sub,
      email: claims.email ?? null,
      emailVerified: claims.email_verified === true,
    });
    return json(outcome === "created" ? 201 : 200, { user });
  },
  "GET /dexcom-tokens": async (_request, claims) => {
    const found = await activeToken(db, claims.sub);
    return json(200, { connected: found?.token != null, token: found?.token ?? null });
  },
  "POST /dexcom-tokens": async (request, claims) => {
    const body = await request.json();
    const { token } = await storeToken(db, claims.sub, {
      accessTokenEncrypted: ciphertextFor(body.access_token),
      refreshTokenEncrypted: ciphertextFor(body.refresh_token),
      encryptionKeyId: "bare",
      expiresIn: body.expires_in,
      tokenType: body.token_type ?? "Bearer",
      scope: body.scope ?? "offline_access",
      dexcomUserId: body.dexcom_user_id ?? null,
    }, crypto.randomUUID());
    return json(201, { token });
  },
  // The token's SQL, the budget's SQL, the decryption and the call to Dexcom, its body passed on.
  "GET /dexcom-egvs": async (_request, claims, url) => {
    const connection = await connectionByUid(db, claims.sub);
    await spendDexcomCall();
    const accessToken = new TextDecoder().decode(await keyRing!.decrypt(connection!.token!.accessTokenEncrypted));
    const query = new URLSearchParams({
      startDate: url.searchParams.get("startDate")!.slice(0, 19),
      endDate: url.searchParams.get("endDate")!.slice(0, 19),
    });
    const answer = await fetch(`${env.DEXCOM_API_BASE_URL}/v3/users/self/egvs?${query}`, {
      headers: { authorization: `Bearer ${accessToken}`, accept: "application/json" },
    });
    return new Response(await answer.text(), { status: answer.status, headers: { "content-type": "application/json; charset=utf-8" } });
  },
  "GET /glucose-readings": async (_request, claims, url) => {
    const found = await glucoseReadings(db, claims.sub, windowOf(url));
    const body = `{"readings":${found!.readingsJson},"synced_at":${JSON.stringify(found!.syncedAt)},` +
      `"newest_reading_at":${JSON.stringify(found!.newestReadingAt)}}`;
    return new Response(body, { status: 200, headers: { "content-type": "application/json; charset=utf-8" } });
  },
  "GET /glucose-summary": async (_request, claims, url) => {
    const result = await glucoseSummary(db, claims.sub, windowOf(url), url.searchParams.get("tz") ?? "UTC");
    return json(200, { summary: result!.summary });
  },
};

function windowOf(url: URL): { start: Date; end: Date } {
  return { start: new Date(url.searchParams.get("start")!), end: new Date(url.searchParams.get("end")!) };
}

// The payload of `Authorization: Bearer <header>.<payload>.<signature>`, unverified.
function claimsOf(request: Request): Claims {
  const payload = request.headers.get("authorization")!.split(".")[1]!;
  return JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
}

const server = Deno.serve({ hostname: "127.0.0.1", port: Number(env.PORT), onListen: () => {} }, async (request) => {
  const url = new URL(request.url);
  const path = url.pathname.replace(/^\/functions\/v1/, "");
  if (path === "/health") return json(200, { status: "ok" });
  const handler = ROUTES[`${request.method} ${path}`];
  if (handler === undefined) return json(404, { error: "not_found" });
  try {
    return await handler(request, claimsOf(request), url);
  } catch (error) {
    console.error(`bare server: ${request.method} ${path}: ${error instanceof Error ? error.message : error}`);
    return json(500, { error: "internal_error" });
  }
});

const stop = async () => {
  await server.shutdown();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
