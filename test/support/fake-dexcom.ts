// A strict in-memory stand-in for Dexcom's OAuth and v3 data API, following
// shared/reference/dexcom-api.md. The core is a web-standard `handle(request)`, so the same double
// serves msw inside vitest (fake-dexcom-msw.ts) and a real node:http server for separate processes
// and Deno benches: this file must import neither vitest nor msw (msw would keep a Deno bench's
// process alive), only node:http and web standards.
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";

export interface FakeDexcomOptions {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** The "expires_in" answered for access tokens; default 7200 as Dexcom does. */
  accessTokenLifetimeSeconds?: number;
}

export type Endpoint = "token" | "dataRange" | "egvs";

export type Fault =
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  | { kind: "delay"; ms: number }
  | { kind: "not_json" }
  | { kind: "rate_limited"; retryAfter?: string };

export interface FakeUser {
  dexcomUserId: string;
  egvs: EgvRecord[];
}

export interface EgvRecord {
  recordId: string;
  systemTime: string;
  displayTime: string;
  transmitterId: string | null;
  transmitterTicks: number;
  value: number | null;
  status: string | null;
  trend: string | null;
  trendRate: number | null;
  unit: string;
  rateUnit: string;
  displayDevice: string;
  transmitterGeneration: string;
  [extra: string]: unknown;
}

const CODE_LIFETIME_MS = 10 * 60 * 1000;
// Dexcom refresh tokens last about a year; answered for realism, not enforced.
const REFRESH_LIFETIME_SECONDS = 365 * 24 * 3600;
const MAX_WINDOW_MS = 30 * 24 * 3600 * 1000;
const DEXCOM_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;

interface AccessState { user: FakeUser; expiresAt: number; expired: boolean }
interface RefreshState { user: FakeUser; live: boolean }
interface CodeState { user: FakeUser; redirectUri: string; expiresAt: number; used: boolean }

export class FakeDexcom {
  readonly counts = { token: 0, exchange: 0, refresh: 0, dataRange: 0, egvs: 0, login: 0 };
  readonly secretsIssued: string[] = [];
  private readonly options: Required<FakeDexcomOptions>;
  private readonly users = new Map<string, FakeUser>();
  private readonly accessTokens = new Map<string, AccessState>();
  private readonly refreshTokens = new Map<string, RefreshState>();
  private readonly codes = new Map<string, CodeState>();
  private readonly faults: Record<Endpoint, Fault[]> = { token: [], dataRange: [], egvs: [] };
  // Delayed answers still waiting, so closing can cancel their timers instead of leaving them.
  private readonly delays = new Set<() => void>();

  constructor(options: FakeDexcomOptions) {
    this.options = { accessTokenLifetimeSeconds: 7200, ...options };
  }

  addUser(dexcomUserId: string = crypto.randomUUID()): FakeUser {
    if (this.users.has(dexcomUserId)) throw new Error(`fake Dexcom already has user ${dexcomUserId}`);
    const user: FakeUser = { dexcomUserId, egvs: [] };
    this.users.set(dexcomUserId, user);
    return user;
  }

  authorize(user: FakeUser, redirectUri: string = this.options.redirectUri): string {
    const code = this.secret();
    this.codes.set(code, { user, redirectUri, expiresAt: Date.now() + CODE_LIFETIME_MS, used: false });
    return code;
  }

  issuePair(user: FakeUser): { access_token: string; refresh_token: string; expires_in: number } {
    const access_token = this.secret();
    const refresh_token = this.secret();
    const expires_in = this.options.accessTokenLifetimeSeconds;
    this.accessTokens.set(access_token, { user, expiresAt: Date.now() + expires_in * 1000, expired: false });
    this.refreshTokens.set(refresh_token, { user, live: true });
    return { access_token, refresh_token, expires_in };
  }

  expireAccessToken(accessToken: string): void {
    const state = this.accessTokens.get(accessToken);
    if (state) state.expired = true;
  }

  failNext(endpoint: Endpoint, fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults[endpoint].push(fault);
  }

  liveRefreshTokens(user: FakeUser): string[] {
    return [...this.refreshTokens].filter(([, s]) => s.user === user && s.live).map(([token]) => token);
  }

  reset(): void {
    for (const key of Object.keys(this.counts) as (keyof FakeDexcom["counts"])[]) this.counts[key] = 0;
    for (const key of Object.keys(this.faults) as Endpoint[]) this.faults[key].length = 0;
  }

  /** Ends every delayed answer still waiting (they answer 503), so no timer outlives a test. */
  cancelDelays(): void {
    for (const cancel of [...this.delays]) cancel();
  }

  async handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/v2/oauth2/login") {
      this.counts.login++;
      return this.login(request, url);
    }
    const endpoint = endpointOf(url.pathname);
    if (endpoint === null) return json(404, { error: "not_found" });

    // The form is read before faults so faulted token calls still count by grant type.
    let form: URLSearchParams | null = null;
    this.counts[endpoint]++;
    if (endpoint === "token" && request.method === "POST" && isForm(request)) {
      form = new URLSearchParams(await request.text());
      const grant = form.get("grant_type");
      if (grant === "authorization_code") this.counts.exchange++;
      if (grant === "refresh_token") this.counts.refresh++;
    }

    const fault = this.faults[endpoint].shift();
    if (fault !== undefined) {
      if (fault.kind !== "delay") return faultResponse(fault);
      if (!(await this.sleep(fault.ms, request.signal))) return json(503, { error: "cancelled" });
    }

    if (endpoint === "token") return this.token(form);
    if (request.method !== "GET") return json(405, { error: "method_not_allowed" });
    const access = this.bearer(request);
    if (access instanceof Response) return access;
    return endpoint === "dataRange" ? this.dataRange(access.user) : this.egvs(access.user, url);
  }

  listen(): Promise<{ url: string; close(): Promise<void> }> {
    let closing = false;
    const server = createServer((req, res) => {
      void this.serveNode(req, res, () => closing);
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const port = typeof address === "object" && address !== null ? address.port : 0;
        resolve({
          url: `http://127.0.0.1:${port}`,
          close: () => {
            closing = true;
            this.cancelDelays();
            const closed = new Promise<void>((done) => server.close(() => done()));
            // Keep-alive sockets would otherwise hold close() open for seconds.
            server.closeAllConnections();
            return closed;
          },
        });
      });
    });
  }

  private async serveNode(req: IncomingMessage, res: ServerResponse, closing: () => boolean): Promise<void> {
    try {
      const chunks: Uint8Array[] = [];
      for await (const chunk of req) chunks.push(chunk as Uint8Array);
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      // A client that hangs up (a caller's timeout) cancels a delayed answer.
      const aborted = new AbortController();
      res.on("close", () => { if (!res.writableFinished) aborted.abort(); });
      const method = req.method ?? "GET";
      const request = new Request(`http://127.0.0.1${req.url ?? "/"}`, {
        method,
        headers,
        body: method === "GET" || method === "HEAD" ? undefined : concat(chunks),
        signal: aborted.signal,
      });
      const response = await this.handle(request);
      const body = new Uint8Array(await response.arrayBuffer());
      // Closing: drop the connection rather than answer, so close() never waits on it.
      if (closing() || res.destroyed) return void res.destroy();
      const out: Record<string, string> = {};
      response.headers.forEach((value, key) => (out[key] = value));
      res.writeHead(response.status, out);
      res.end(body);
    } catch {
      if (!res.destroyed && !res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  }

  private login(request: Request, url: URL): Response {
    const p = url.searchParams;
    const problem =
      request.method !== "GET" ? "method must be GET"
      : p.get("client_id") !== this.options.clientId ? "unknown client_id"
      : p.get("redirect_uri") !== this.options.redirectUri ? "redirect_uri does not match the registered one"
      : p.get("response_type") !== "code" ? "response_type must be code"
      : p.get("scope") !== "offline_access" ? "scope must be offline_access"
      : !p.get("state") ? "state is required"
      : null;
    if (problem !== null) return html(400, `<p>Invalid request: ${problem}</p>`);
    return html(200, "<form method=post><p>Sign in to Dexcom</p><button>Authorize</button></form>");
  }

  private token(form: URLSearchParams | null): Response {
    if (form === null) return json(400, { error: "invalid_request", error_description: "POST an x-www-form-urlencoded form" });
    if (form.get("client_id") !== this.options.clientId || form.get("client_secret") !== this.options.clientSecret) {
      return json(401, { error: "invalid_client", error_description: "Invalid client credentials" });
    }
    const grant = form.get("grant_type");
    if (!grant) return json(400, { error: "invalid_request", error_description: "Missing grant_type" });
    if (grant === "authorization_code") return this.exchange(form);
    if (grant === "refresh_token") return this.rotate(form);
    return json(400, { error: "unsupported_grant_type", error_description: `Unsupported grant_type ${grant}` });
  }

  private exchange(form: URLSearchParams): Response {
    const code = form.get("code");
    const redirectUri = form.get("redirect_uri");
    if (!code || !redirectUri) return json(400, { error: "invalid_request", error_description: "Missing code or redirect_uri" });
    const state = this.codes.get(code);
    if (state === undefined || state.used || Date.now() > state.expiresAt) return invalidGrant("Code not valid");
    // Strict: presenting a code uses it up, even when the redirect_uri is wrong.
    state.used = true;
    if (redirectUri !== state.redirectUri) return invalidGrant("Incorrect redirect_uri");
    return this.tokenAnswer(state.user);
  }

  private rotate(form: URLSearchParams): Response {
    const token = form.get("refresh_token");
    if (!token) return json(400, { error: "invalid_request", error_description: "Missing refresh_token" });
    const state = this.refreshTokens.get(token);
    if (state === undefined || !state.live) return invalidGrant("Invalid refresh token");
    // Rotation with no grace period: the old refresh token dies now; its access token lives on.
    state.live = false;
    return this.tokenAnswer(state.user);
  }

  private tokenAnswer(user: FakeUser): Response {
    const pair = this.issuePair(user);
    return json(200, {
      access_token: pair.access_token,
      expires_in: pair.expires_in,
      refresh_expires_in: REFRESH_LIFETIME_SECONDS,
      refresh_token: pair.refresh_token,
      token_type: "Bearer",
      "not-before-policy": 0,
      session_state: crypto.randomUUID(),
    }, { "cache-control": "no-store", pragma: "no-cache" });
  }

  private bearer(request: Request): AccessState | Response {
    const match = /^Bearer (\S+)$/.exec(request.headers.get("authorization") ?? "");
    const state = match ? this.accessTokens.get(match[1]!) : undefined;
    if (state === undefined) return apigeeFault("Invalid Access Token", "oauth.v2.InvalidAccessToken");
    if (state.expired || Date.now() >= state.expiresAt) {
      return apigeeFault("Access Token expired", "keymanagement.service.access_token_expired");
    }
    return state;
  }

  private dataRange(user: FakeUser): Response {
    let first: EgvRecord | undefined;
    let last: EgvRecord | undefined;
    for (const record of user.egvs) {
      const at = utcInstant(record.systemTime);
      if (first === undefined || at < utcInstant(first.systemTime)) first = record;
      if (last === undefined || at > utcInstant(last.systemTime)) last = record;
    }
    const moment = (r: EgvRecord) => ({ systemTime: r.systemTime, displayTime: r.displayTime });
    return json(200, {
      recordType: "dataRange",
      recordVersion: "3.0",
      userId: user.dexcomUserId,
      calibrations: null,
      egvs: first && last ? { start: moment(first), end: moment(last) } : null,
      events: null,
    });
  }

  private egvs(user: FakeUser, url: URL): Response {
    const start = parseDexcomDate(url.searchParams.get("startDate"));
    const end = parseDexcomDate(url.searchParams.get("endDate"));
    const problem =
      start === null ? "startDate is required as YYYY-MM-DDTHH:mm:ss"
      : end === null ? "endDate is required as YYYY-MM-DDTHH:mm:ss"
      : end <= start ? "endDate must be after startDate"
      : end - start > MAX_WINDOW_MS ? "The date range must not exceed 30 days"
      : null;
    if (problem !== null || start === null || end === null) return json(400, { error: "invalid_request", message: problem });
    const records = user.egvs.filter((r) => {
      const at = utcInstant(r.systemTime);
      return at >= start && at <= end;
    });
    return json(200, { recordType: "egv", recordVersion: "3.0", userId: user.dexcomUserId, records });
  }

  /** Waits ms; false when cancelled (close, or the caller hung up). */
  private sleep(ms: number, signal: AbortSignal | null): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (completed: boolean) => {
        clearTimeout(timer);
        this.delays.delete(cancel);
        signal?.removeEventListener("abort", cancel);
        resolve(completed);
      };
      const cancel = () => finish(false);
      const timer = setTimeout(() => finish(true), ms);
      this.delays.add(cancel);
      signal?.addEventListener("abort", cancel);
    });
  }

  private secret(): string {
    // 48 random bytes: 64 base64url characters, long and unique enough to search logs for.
    const bytes = crypto.getRandomValues(new Uint8Array(48));
    const value = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    this.secretsIssued.push(value);
    return value;
  }
}

/** What egvSeries's readings share: a steady trend, in mg/dL, from a G7 read by the iOS app. */
export const G7_IOS_READING = {
  trend: "flat",
  trendRate: 0.1,
  unit: "mg/dL",
  rateUnit: "mg/dL/min",
  displayDevice: "iOS",
  transmitterGeneration: "g7",
} as const;

/** Realistic EGV records every 5 minutes from `start`, mg/dL, a G7 read by the iOS app. */
export function egvSeries(
  start: Date,
  count: number,
  options: { value?: (index: number) => number | null } = {},
): EgvRecord[] {
  // A smooth swing between 60 and 260 mg/dL over about 10 hours.
  const value = options.value ?? ((i: number) => Math.round(160 + 100 * Math.sin((i * 2 * Math.PI) / 120)));
  const transmitterId = crypto.randomUUID().replace(/-/g, "").slice(0, 6);
  const firstTicks = 1_000_000;
  const records: EgvRecord[] = [];
  for (let i = 0; i < count; i++) {
    const at = new Date(start.getTime() + i * 5 * 60 * 1000);
    const reading = value(i);
    records.push({
      recordId: crypto.randomUUID(),
      // v3 sends systemTime in UTC without an offset; the phone app's displayTime carries one.
      systemTime: at.toISOString().slice(0, 19),
      displayTime: pacificTime(at),
      transmitterId,
      transmitterTicks: firstTicks + i * 300,
      value: reading,
      status: reading === null ? "unknown" : reading < 40 ? "low" : reading > 400 ? "high" : "ok",
      ...G7_IOS_READING,
    });
  }
  return records;
}

function pacificTime(at: Date): string {
  return new Date(at.getTime() - 8 * 3600 * 1000).toISOString().slice(0, 19) + "-08:00";
}

function endpointOf(path: string): Endpoint | null {
  if (path === "/v2/oauth2/token") return "token";
  if (path === "/v3/users/self/dataRange") return "dataRange";
  if (path === "/v3/users/self/egvs") return "egvs";
  return null;
}

function isForm(request: Request): boolean {
  const type = request.headers.get("content-type") ?? "";
  return type.split(";")[0]!.trim().toLowerCase() === "application/x-www-form-urlencoded";
}

/** Dexcom's exact query format, read as UTC; null when absent, malformed or not a real date. */
function parseDexcomDate(value: string | null): number | null {
  if (value === null || !DEXCOM_DATE.test(value)) return null;
  const at = Date.parse(`${value}Z`);
  // Date.parse rolls 2026-02-30 over to March; a round trip catches impossible dates.
  if (Number.isNaN(at) || new Date(at).toISOString().slice(0, 19) !== value) return null;
  return at;
}

/** Stored times are offset-less UTC, as Dexcom sends them; an offset, when a test adds one, is honoured. */
function utcInstant(time: string): number {
  return Date.parse(/(Z|[+-]\d{2}:?\d{2})$/.test(time) ? time : `${time}Z`);
}

function faultResponse(fault: Exclude<Fault, { kind: "delay" }>): Response {
  switch (fault.kind) {
    case "status":
      return new Response(fault.body ?? "", { status: fault.status, headers: fault.headers });
    case "not_json":
      return html(200, "<!doctype html><html><body><h1>Service temporarily unavailable</h1></body></html>");
    case "rate_limited": {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (fault.retryAfter !== undefined) headers["retry-after"] = fault.retryAfter;
      const body = { fault: { faultstring: "Rate limit quota violation", detail: { errorcode: "policies.ratelimit.QuotaViolation" } } };
      return new Response(JSON.stringify(body), { status: 429, headers });
    }
  }
}

function invalidGrant(description: string): Response {
  return json(400, { error: "invalid_grant", error_description: description });
}

// Dexcom's gateway answers token problems in its own shape; callers must not rely on it.
function apigeeFault(faultstring: string, errorcode: string): Response {
  return json(401, { fault: { faultstring, detail: { errorcode } } });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function html(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8" } });
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
