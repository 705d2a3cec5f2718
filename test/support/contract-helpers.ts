// Helpers for the contract tests (test/users, dexcom-tokens, health, http, bad-inputs,
// concurrency, secrets): raw requests the `call` helper cannot make, database snapshots and the
// usual set-up steps.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Queryable } from "../../shared/db/database.ts";
import { BASE_URL, type CallResult, type TestBackend, toResult } from "./backend.ts";

/**
 * The Access-Control-Allow-Headers value the contract names: the headers of supabase-js's
 * `@supabase/supabase-js/cors` (read from the installed SDK's source text, not through our import
 * of it), then ours.
 */
export const CONTRACT_ALLOWED_HEADERS = [
  ...sdkCorsHeaders(),
  "x-request-id",
  "x-region",
  "traceparent",
  "tracestate",
  "baggage",
].join(", ");

function sdkCorsHeaders(): string[] {
  const source = readFileSync(createRequire(import.meta.url).resolve("@supabase/supabase-js/cors"), "utf8");
  const list = /SUPABASE_HEADERS\s*=\s*\[([^\]]*)\]/.exec(source);
  if (!list) throw new Error("the SDK's cors module no longer has SUPABASE_HEADERS; look at it again");
  return [...list[1]!.matchAll(/"([^"]+)"/g)].map((match) => match[1]!);
}

export const USER_KEYS = ["created_at", "dexcom_user_id", "email", "firebase_uid", "id", "is_active", "updated_at"];
export const TOKEN_KEYS = ["created_at", "expires_at", "id", "scope", "token_type", "updated_at"];
export const ERROR_KEYS = ["error", "message", "request_id"];

/** ISO 8601 in UTC as JavaScript writes it. */
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export interface TablesSnapshot {
  users: unknown[];
  dexcom_tokens: unknown[];
}

/** Every row of both tables, to tell that a request changed nothing. */
export async function snapshotTables(db: Queryable): Promise<TablesSnapshot> {
  return {
    users: await db.query("SELECT * FROM users ORDER BY id"),
    dexcom_tokens: await db.query("SELECT * FROM dexcom_tokens ORDER BY id"),
  };
}

/** A valid POST /dexcom-tokens body, with overrides (undefined removes a field). */
export function tokenBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const body: Record<string, unknown> = {
    access_token: "access-token-value",
    refresh_token: "refresh-token-value",
    expires_in: 7200,
    ...overrides,
  };
  for (const [key, value] of Object.entries(body)) if (value === undefined) delete body[key];
  return body;
}

/** A valid ID token for a caller who has done POST /users. */
export async function registeredCaller(backend: TestBackend, uid: string, claims: Record<string, unknown> = {}): Promise<string> {
  const token = await backend.token(uid, { email: `${uid}@example.com`, ...claims });
  const response = await backend.call("users", { method: "POST", token });
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`POST /users for ${uid} answered ${response.status}: ${response.text}`);
  }
  return token;
}

export async function setInactive(db: Queryable, uid: string): Promise<void> {
  await db.query("UPDATE users SET is_active = false WHERE firebase_uid = $1", [uid]);
}

/** A body stream of these bytes in chunks, so that no content-length is derived from it. */
export function byteStream(bytes: Uint8Array, chunkSize = 8192): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A stream body is sent with `duplex: "half"`, and whatever content-length the headers say. */
  body?: BodyInit | ReadableStream<Uint8Array> | null;
}

/** A Request straight to the gateway handler, for what `backend.call` cannot express. */
export async function rawCall(backend: TestBackend, path: string, options: RawRequestOptions = {}): Promise<CallResult> {
  const init: RequestInit & { duplex?: "half" } = {
    method: options.method ?? "GET",
    headers: options.headers ?? {},
  };
  if (options.body !== undefined && options.body !== null) {
    init.body = options.body as BodyInit;
    if (options.body instanceof ReadableStream) init.duplex = "half";
  }
  return toResult(await backend.handler(new Request(`${BASE_URL}${path}`, init)));
}

/** All of a response's headers as one string, to search it. */
export function headerText(headers: Headers): string {
  return [...headers.entries()].map(([key, value]) => `${key}: ${value}`).join("\n");
}
