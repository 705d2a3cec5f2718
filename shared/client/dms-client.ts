// The app's typed client: calls the functions through supabase-js (`functions.invoke`) with the
// caller's Firebase ID token, and checks every answer against the same zod schemas the server uses.
import type { SupabaseClient } from "@supabase/supabase-js";
import type { z } from "zod";
import {
  egvsResponse,
  type EgvsResponse,
  errorBody,
  type ErrorBody,
  type Health,
  healthResponse,
  type OAuthStart,
  oauthStartResponse,
  revokeTokensResponse,
  storeTokenResponse,
  type StoreTokenRequest,
  type Token,
  type TokenStatus,
  tokenStatusResponse,
  type User,
  userResponse,
} from "../api/schemas.ts";

/** The part of a SupabaseClient we use: the app passes the client it already has. */
export type FunctionsInvoker = Pick<SupabaseClient, "functions">;

/** A failed call: the contract's error code (or `network_error` / `unexpected_response`) and the request id. */
export class DmsApiError extends Error {
  override name = "DmsApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly details: ErrorBody["details"] = undefined,
  ) {
    super(message);
  }
}

export interface DmsClientOptions {
  supabase: FunctionsInvoker;
  /** The signed-in user's Firebase ID token (Firebase's `user.getIdToken()`). */
  getIdToken(): Promise<string> | string;
}

export function createDmsClient({ supabase, getIdToken }: DmsClientOptions) {
  async function call<T>(
    name: string,
    method: "GET" | "POST" | "DELETE",
    schema: z.ZodType<T> | null,
    body?: Record<string, unknown>,
    authenticated = true,
  ): Promise<T> {
    const headers: Record<string, string> = authenticated ? { authorization: `Bearer ${await getIdToken()}` } : {};
    const { data, error, response } = await supabase.functions.invoke(name, { method, headers, body });
    if (error) throw await asApiError(error, response);
    if (schema === null) return undefined as T;
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new DmsApiError(response?.status ?? 0, "unexpected_response", "The server's answer did not have the expected shape.", response?.headers.get("x-request-id") ?? null);
    }
    return parsed.data;
  }

  return {
    health: (): Promise<Health> => call("health", "GET", healthResponse, undefined, false),
    users: {
      /** Registers the signed-in user, or refreshes their row. */
      register: async (): Promise<User> => (await call("users", "POST", userResponse)).user,
      get: async (): Promise<User> => (await call("users", "GET", userResponse)).user,
      /** Deletes the user and all their Dexcom tokens. */
      delete: (): Promise<void> => call("users", "DELETE", null),
    },
    dexcomTokens: {
      store: async (token: StoreTokenRequest): Promise<Token> =>
        (await call("dexcom-tokens", "POST", storeTokenResponse, token)).token,
      status: (): Promise<TokenStatus> => call("dexcom-tokens", "GET", tokenStatusResponse),
      /** Revokes the active tokens; returns how many. */
      revoke: async (): Promise<number> => (await call("dexcom-tokens", "DELETE", revokeTokensResponse)).revoked,
    },
    dexcom: {
      /**
       * Starts connecting a Dexcom account: open `authorize_url` in a browser tab; the backend's
       * callback ends at DEXCOM_APP_REDIRECT_URL with `status` (and `reason`).
       */
      startAuthorization: (): Promise<OAuthStart> => call("dexcom-oauth/start", "POST", oauthStartResponse),
      /** Glucose readings (EGVs) in [start, end], at most 30 days; Date or ISO 8601 text (no offset = UTC). */
      egvs: (range: { start: Date | string; end: Date | string }): Promise<EgvsResponse> => {
        const text = (at: Date | string) => (at instanceof Date ? at.toISOString() : at);
        const query = new URLSearchParams({ startDate: text(range.start), endDate: text(range.end) });
        return call(`dexcom-egvs?${query}`, "GET", egvsResponse);
      },
    },
  };
}

export type DmsClient = ReturnType<typeof createDmsClient>;

async function asApiError(error: unknown, response: Response | undefined): Promise<DmsApiError> {
  if (!response) {
    return new DmsApiError(0, "network_error", `The DMS backend could not be reached (${(error as Error)?.name ?? "error"}).`, null);
  }
  const requestId = response.headers.get("x-request-id");
  const parsed = errorBody.safeParse(await response.json().catch(() => null));
  if (!parsed.success) {
    return new DmsApiError(response.status, "unexpected_response", `The server answered ${response.status}.`, requestId);
  }
  const { error: code, message, request_id, details } = parsed.data;
  return new DmsApiError(response.status, code, message, request_id ?? requestId, details);
}
