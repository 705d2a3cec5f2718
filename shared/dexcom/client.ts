// The one place that talks to Dexcom's API: base URL, form encoding, the 10 s deadline, what each
// answer means, and counting calls. Everything else sees typed results or the errors below.
import { z } from "zod";
import { parseDexcomTime } from "./iso-time.ts";

/** Dexcom's answer could not be had or used: down, slow, 5xx, not JSON, an unexpected status. Transient. */
export class DexcomUnavailable extends Error {
  override name = "DexcomUnavailable";
  /** What happened, safe to log: timeout, network, http_<status>, not_json, bad_answer. */
  constructor(readonly reason: string) {
    super(`Dexcom is unavailable (${reason})`);
  }
}

/** The token endpoint refused a code or refresh token: RFC 6749 `invalid_grant`. The only fatal answer. */
export class DexcomInvalidGrant extends Error {
  override name = "DexcomInvalidGrant";
  constructor() {
    super("Dexcom refused the grant (invalid_grant)");
  }
}

/** The token endpoint answered another OAuth error (invalid_client, invalid_request, ...). */
export class DexcomOAuthError extends Error {
  override name = "DexcomOAuthError";
  /** The RFC 6749 error code as Dexcom sent it (only [a-z_], at most 64 characters), or `http_<status>`. */
  constructor(readonly code: string) {
    super(`Dexcom refused the request (${code})`);
  }
}

/** A data endpoint answered 401: the access token is expired or unknown. */
export class DexcomUnauthorized extends Error {
  override name = "DexcomUnauthorized";
  constructor() {
    super("Dexcom refused the access token (401)");
  }
}

/** Dexcom answered 429; `retryAfterSeconds` from its Retry-After header when it sent a usable one. */
export class DexcomRateLimited extends Error {
  override name = "DexcomRateLimited";
  constructor(readonly retryAfterSeconds: number | null) {
    super("Dexcom's rate limit was reached (429)");
  }
}

/** What the token endpoint answers (RFC 6749 §5.1); unknown fields are ignored. */
export interface TokenAnswer {
  accessToken: string;
  refreshToken: string;
  /** Seconds, as Dexcom gave it (7200 today). */
  expiresIn: number;
  tokenType: string;
}

const tokenAnswer = z.object({
  access_token: z.string().min(1).max(4096),
  refresh_token: z.string().min(1).max(4096),
  expires_in: z.int().min(1).max(31_536_000),
  token_type: z.string().min(1).max(50).optional(),
});

// Dexcom's times are messy (no offset, sometimes no seconds): an unreadable bound is unknown, not fatal.
const dataRangeTime = z.object({ systemTime: z.string() }).nullish().transform((point) => readTime(point?.systemTime));
const dataRangeAnswer = z.object({
  userId: z.string().min(1).max(255),
  egvs: z.object({ start: dataRangeTime, end: dataRangeTime }).nullish().catch({ start: null, end: null }),
});

/** What `dataRange` says exists; a bound is null when Dexcom's time could not be read. */
export interface DataRange {
  userId: string;
  /** null: the account has no EGVs at all. */
  egvs: { start: Date | null; end: Date | null } | null;
}

function readTime(text: string | undefined): Date | null {
  return text === undefined ? null : parseDexcomTime(text);
}

export type DexcomCall = "token" | "dataRange" | "egvs";

export interface DexcomClientOptions {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  fetch?: typeof fetch;
  /** Per call; the contract's 10 s unless a test says otherwise. */
  timeoutMs?: number;
  /** Told of every call before it is made (the call budget counts here). */
  onCall?: (call: DexcomCall) => void | Promise<void>;
}

/** A point in time (ms since the epoch, as Date.now()) by which a whole request must be answered. */
export interface CallOptions {
  deadline?: number;
}

export const DEXCOM_TIMEOUT_MS = 10_000;

export type DexcomClient = ReturnType<typeof createDexcomClient>;

/**
 * Dexcom's OAuth 2.0 (authorization code, client credentials in the form body, `/v2/oauth2/*`)
 * and data API (`/v3/users/self/*`), as its developer documentation describes them.
 *
 * Errors: DexcomInvalidGrant (400 invalid_grant from the token endpoint), DexcomOAuthError (another
 * OAuth error), DexcomUnauthorized (401 from a data endpoint), DexcomRateLimited (429), and
 * DexcomUnavailable for everything else that is not a usable answer (timeouts included). Messages
 * never carry a token, code or secret.
 */
export function createDexcomClient(options: DexcomClientOptions) {
  const { baseUrl, clientId, clientSecret, redirectUri } = options;
  const fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const timeoutMs = options.timeoutMs ?? DEXCOM_TIMEOUT_MS;
  const counts: Record<DexcomCall, number> = { token: 0, dataRange: 0, egvs: 0 };

  async function call(kind: DexcomCall, url: string, init: RequestInit, deadline?: number): Promise<Response> {
    const allowed = Math.min(timeoutMs, deadline === undefined ? timeoutMs : deadline - Date.now());
    if (allowed <= 0) throw new DexcomUnavailable("timeout");
    await options.onCall?.(kind);
    counts[kind] += 1;
    try {
      const response = await fetchFn(url, { ...init, signal: AbortSignal.timeout(allowed) });
      // The body is read under the same signal: a server that stalls mid-body times out too.
      const body = await response.text();
      return new Response(body, { status: response.status, headers: response.headers });
    } catch (error) {
      throw new DexcomUnavailable(isTimeout(error) ? "timeout" : "network");
    }
  }

  async function token(form: Record<string, string>, deadline?: number): Promise<TokenAnswer> {
    const response = await call("token", `${baseUrl}/v2/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, ...form }),
    }, deadline);
    const body = await jsonOf(response);
    if (response.status === 429) throw rateLimited(response);
    if (response.ok) {
      const parsed = tokenAnswer.safeParse(body);
      if (!parsed.success) throw new DexcomUnavailable("bad_answer");
      const answer = parsed.data;
      return {
        accessToken: answer.access_token,
        refreshToken: answer.refresh_token,
        expiresIn: answer.expires_in,
        tokenType: answer.token_type ?? "Bearer",
      };
    }
    const error = oauthError(body);
    if (response.status === 400 && error === "invalid_grant") throw new DexcomInvalidGrant();
    if (response.status >= 500 || body === undefined) throw new DexcomUnavailable(`http_${response.status}`);
    throw new DexcomOAuthError(error ?? `http_${response.status}`);
  }

  async function data(kind: DexcomCall, path: string, accessToken: string, deadline?: number): Promise<Response> {
    const response = await call(kind, `${baseUrl}${path}`, {
      headers: { authorization: `Bearer ${accessToken}`, accept: "application/json" },
    }, deadline);
    if (response.status === 401) throw new DexcomUnauthorized();
    if (response.status === 429) throw rateLimited(response);
    if (!response.ok) throw new DexcomUnavailable(`http_${response.status}`);
    return response;
  }

  return {
    /** Calls made so far, by endpoint. */
    counts: counts as Readonly<Record<DexcomCall, number>>,

    /** Where the browser goes to sign in to Dexcom and approve (`/v2/oauth2/login`). */
    authorizeUrl(state: string): string {
      const query = new URLSearchParams({
        client_id: clientId,
        redirect_uri: redirectUri,
        response_type: "code",
        scope: "offline_access",
        state,
      });
      return `${baseUrl}/v2/oauth2/login?${query}`;
    },

    /** `grant_type=authorization_code`: the code from the callback for a token pair. */
    exchangeCode(code: string, options: CallOptions = {}): Promise<TokenAnswer> {
      return token({ code, grant_type: "authorization_code", redirect_uri: redirectUri }, options.deadline);
    },

    /** `grant_type=refresh_token`: a new pair; Dexcom's refresh tokens are single use, the old one is dead after. */
    refresh(refreshToken: string, options: CallOptions = {}): Promise<TokenAnswer> {
      return token({ refresh_token: refreshToken, grant_type: "refresh_token" }, options.deadline);
    },

    /**
     * `GET /v3/users/self/dataRange`: the Dexcom account's `userId` (stable per account and app) and
     * the span of its EGVs (systemTime, UTC). Its `lastSyncTime` parameter is unreliable: never sent.
     */
    async dataRange(accessToken: string, options: CallOptions = {}): Promise<DataRange> {
      const response = await data("dataRange", "/v3/users/self/dataRange", accessToken, options.deadline);
      const parsed = dataRangeAnswer.safeParse(await jsonOf(response));
      if (!parsed.success) throw new DexcomUnavailable("bad_answer");
      const egvs = parsed.data.egvs;
      // Absent or null: nothing recorded; present but unreadable: unknown bounds (the caller's defaults).
      return { userId: parsed.data.userId, egvs: egvs === null || egvs === undefined ? null : egvs };
    },

    /**
     * `GET /v3/users/self/egvs`: the body as Dexcom sent it (JSON text). startDate and endDate are
     * UTC `YYYY-MM-DDTHH:mm:ss`, at most 30 days apart.
     */
    async egvs(accessToken: string, startDate: string, endDate: string, options: CallOptions = {}): Promise<string> {
      const query = new URLSearchParams({ startDate, endDate });
      const response = await data("egvs", `/v3/users/self/egvs?${query}`, accessToken, options.deadline);
      const text = await response.text();
      if (!isJsonObject(text)) throw new DexcomUnavailable("not_json");
      return text;
    },
  };
}

// Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3).
function rateLimited(response: Response): DexcomRateLimited {
  const header = response.headers.get("retry-after")?.trim() ?? "";
  if (/^\d{1,9}$/.test(header)) return new DexcomRateLimited(Number(header));
  const at = Date.parse(header);
  if (header !== "" && Number.isFinite(at)) return new DexcomRateLimited(Math.max(0, Math.ceil((at - Date.now()) / 1000)));
  return new DexcomRateLimited(null);
}

async function jsonOf(response: Response): Promise<unknown> {
  try {
    return JSON.parse(await response.text());
  } catch {
    return undefined;
  }
}

function isJsonObject(text: string): boolean {
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

// Only a well-formed RFC 6749 error code is kept: it ends up in logs and redirects' reasons.
function oauthError(body: unknown): string | null {
  const error = (body as { error?: unknown } | undefined)?.error;
  return typeof error === "string" && /^[a-z_]{1,64}$/.test(error) ? error : null;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}
