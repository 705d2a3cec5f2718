import type { RequestHandler } from "msw";
import { setupServer } from "msw/node";
import { buildLocalServer } from "../../shared/app/server.ts";
import { generateKey } from "../../shared/crypto/fernet.ts";
import { jsonLogger } from "../../shared/http/log.ts";
import { migratedPostgres, type TestDatabase } from "./databases.ts";
import { type JwksEndpoint, jwksHandler } from "./firebase-jwks-server.ts";
import { type Claims, createTestKeys, type TestKeys } from "./firebase-tokens.ts";

/** Where `npm start` and `supabase start` serve the functions; requests to the handler use it too. */
export const BASE_URL = "http://127.0.0.1:54321/functions/v1";

export interface CallOptions {
  method?: string;
  /** Path inside the function, e.g. "/start"; default its root. */
  path?: string;
  /** A Firebase ID token for `Authorization: Bearer`. */
  token?: string;
  /** Sent as JSON with content-type application/json. */
  json?: unknown;
  /** Sent as is (with whatever headers are given). */
  body?: BodyInit;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is empty or not JSON. */
  body: any;
}

export interface TestBackend {
  database: TestDatabase;
  keys: TestKeys;
  /** Google's key set endpoint as msw serves it; can be made to fail. */
  jwks: JwksEndpoint;
  /** The ENCRYPTION_KEY the backend runs with. */
  encryptionKey: string;
  /** Every log line the backend wrote, as written. */
  logs: string[];
  handler: (request: Request) => Promise<Response>;
  call(fn: string, options?: CallOptions): Promise<CallResult>;
  /** A valid RS256 Firebase ID token for this uid (email `<uid>@example.com` unless claims say otherwise). */
  token(uid: string, claims?: Claims): Promise<string>;
  close(): Promise<void>;
}

/**
 * Every function as `npm run serve` builds it, on a fresh migrated Postgres, with msw serving a
 * test key set at Google's real JWKS URL. Requests go straight to the gateway handler.
 */
export async function startTestBackend(
  env: Record<string, string> = {},
  options: {
    reachDatabaseAt?: (url: string) => string;
    /** More msw handlers for what lies outside our walls (the fake Dexcom). */
    handlers?: RequestHandler[];
  } = {},
): Promise<TestBackend> {
  const database = await migratedPostgres();
  const keys = await createTestKeys();
  const jwks = jwksHandler(keys.jwks);
  const msw = setupServer(jwks.handler, ...(options.handlers ?? []));
  msw.listen({ onUnhandledRequest: "error" });
  const encryptionKey = generateKey();
  const logs: string[] = [];
  const server = await buildLocalServer(
    {
      DATABASE_URL: options.reachDatabaseAt?.(database.url) ?? database.url,
      FIREBASE_PROJECT_ID: keys.projectId, ENCRYPTION_KEY: encryptionKey,
      ...env,
    },
    jsonLogger((line) => logs.push(line)),
  );

  async function call(fn: string, options: CallOptions = {}): Promise<CallResult> {
    const headers = new Headers(options.headers);
    if (options.token !== undefined) headers.set("authorization", `Bearer ${options.token}`);
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    const response = await server.handler(
      new Request(`${BASE_URL}/${fn}${options.path ?? ""}`, {
        method: options.method ?? "GET",
        headers,
        body,
      }),
    );
    return toResult(response);
  }

  return {
    database,
    keys,
    jwks,
    encryptionKey,
    logs,
    handler: server.handler,
    call,
    // Each uid gets its own email unless told otherwise, so users never collide by accident.
    token: (uid, claims = {}) => keys.idToken({ sub: uid, email: `${uid}@example.com`, ...claims }),
    close: async () => {
      msw.close();
      await server.deps.db.close();
      await database.drop();
    },
  };
}

/** A response as `call` answers it: the body read as text, and parsed when it is JSON. */
export async function toResult(response: Response): Promise<CallResult> {
  const text = await response.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body };
}
