import { http, passthrough } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { egvSeries, FakeDexcom, G7_IOS_READING } from "./support/fake-dexcom.ts";
import type { FakeUser } from "./support/fake-dexcom.ts";
import { fakeDexcomHandlers } from "./support/fake-dexcom-msw.ts";

const BASE = "https://sandbox-api.dexcom.com";
const CLIENT = {
  clientId: "dms-client",
  clientSecret: "dms-client-secret",
  redirectUri: "https://backend.test/functions/v1/dexcom-oauth/callback",
};

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => {
  server.resetHandlers();
  vi.restoreAllMocks();
});
afterAll(() => server.close());

let dexcom: FakeDexcom;
let user: FakeUser;
beforeEach(() => {
  dexcom = new FakeDexcom(CLIENT);
  user = dexcom.addUser();
  server.use(...fakeDexcomHandlers(dexcom, BASE));
});
afterEach(() => dexcom.cancelDelays());

function postToken(fields: Record<string, string>, base = BASE): Promise<Response> {
  return fetch(`${base}/v2/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, ...fields }),
  });
}

function exchange(code: string, redirectUri = CLIENT.redirectUri, base = BASE): Promise<Response> {
  return postToken({ grant_type: "authorization_code", code, redirect_uri: redirectUri }, base);
}

function refresh(refreshToken: string): Promise<Response> {
  return postToken({ grant_type: "refresh_token", refresh_token: refreshToken });
}

function getData(path: string, accessToken: string | null, base = BASE): Promise<Response> {
  const headers: Record<string, string> = accessToken === null ? {} : { authorization: `Bearer ${accessToken}` };
  return fetch(`${base}${path}`, { headers });
}

async function expectError(response: Response, status: number, error: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(((await response.json()) as { error: string }).error).toBe(error);
}

interface TokenBody { access_token: string; refresh_token: string; expires_in: number; [key: string]: unknown }

describe("authorize page", () => {
  const loginUrl = (overrides: Record<string, string | null> = {}) => {
    const params: Record<string, string | null> = {
      client_id: CLIENT.clientId,
      redirect_uri: CLIENT.redirectUri,
      response_type: "code",
      scope: "offline_access",
      state: "some-state",
      ...overrides,
    };
    const query = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== null));
    return `${BASE}/v2/oauth2/login?${query}`;
  };

  it("answers an HTML page for valid parameters and counts the call", async () => {
    const response = await fetch(loginUrl());
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(dexcom.counts.login).toBe(1);
  });

  it.each([
    ["an unknown client_id", { client_id: "other" }],
    ["another redirect_uri", { redirect_uri: "https://evil.test/callback" }],
    ["response_type token", { response_type: "token" }],
    ["another scope", { scope: "egv" }],
    ["no state", { state: null }],
  ])("answers 400 for %s", async (_name, overrides) => {
    expect((await fetch(loginUrl(overrides))).status).toBe(400);
  });
});

describe("code exchange", () => {
  it("gives a token pair once, then invalid_grant for the same code", async () => {
    const code = dexcom.authorize(user);
    const first = await exchange(code);
    expect(first.status).toBe(200);
    const body = (await first.json()) as TokenBody;
    expect(body).toMatchObject({ expires_in: 7200, token_type: "Bearer", "not-before-policy": 0 });
    expect(body.refresh_expires_in).toEqual(expect.any(Number));
    expect(body.session_state).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(body.access_token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(body.access_token).not.toBe(body.refresh_token);
    expect(dexcom.secretsIssued).toEqual(expect.arrayContaining([code, body.access_token, body.refresh_token]));
    expect(dexcom.liveRefreshTokens(user)).toEqual([body.refresh_token]);

    await expectError(await exchange(code), 400, "invalid_grant");
  });

  it("answers the configured lifetime as expires_in", async () => {
    const short = new FakeDexcom({ ...CLIENT, accessTokenLifetimeSeconds: 90 });
    expect(short.issuePair(short.addUser()).expires_in).toBe(90);
  });

  it("refuses a redirect_uri other than the code's, and the code is then used up", async () => {
    const code = dexcom.authorize(user);
    await expectError(await exchange(code, "https://other.test/callback"), 400, "invalid_grant");
    await expectError(await exchange(code), 400, "invalid_grant");
  });

  it("refuses an unknown code and one older than 10 minutes", async () => {
    await expectError(await exchange("made-up-code"), 400, "invalid_grant");
    const code = dexcom.authorize(user);
    const later = Date.now() + 10 * 60 * 1000 + 1000;
    vi.spyOn(Date, "now").mockReturnValue(later);
    await expectError(await exchange(code), 400, "invalid_grant");
  });

  it("answers 401 invalid_client for a wrong secret or client id, leaving the code usable", async () => {
    const code = dexcom.authorize(user);
    const fields = { grant_type: "authorization_code", code, redirect_uri: CLIENT.redirectUri };
    await expectError(await postToken({ ...fields, client_secret: "wrong" }), 401, "invalid_client");
    await expectError(await postToken({ ...fields, client_id: "other" }), 401, "invalid_client");
    expect((await exchange(code)).status).toBe(200);
  });

  it("answers 400 invalid_request for a JSON body or another method", async () => {
    const code = dexcom.authorize(user);
    const asJson = await fetch(`${BASE}/v2/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret, grant_type: "authorization_code", code, redirect_uri: CLIENT.redirectUri }),
    });
    await expectError(asJson, 400, "invalid_request");
    await expectError(await fetch(`${BASE}/v2/oauth2/token`), 400, "invalid_request");
    expect((await exchange(code)).status).toBe(200);
  });

  it("answers unsupported_grant_type for another grant", async () => {
    await expectError(await postToken({ grant_type: "client_credentials" }), 400, "unsupported_grant_type");
  });
});

describe("refresh", () => {
  it("rotates: a new pair each time, the old refresh token dead at once, the old access token alive", async () => {
    const first = dexcom.issuePair(user);
    const response = await refresh(first.refresh_token);
    expect(response.status).toBe(200);
    const second = (await response.json()) as TokenBody;
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(dexcom.liveRefreshTokens(user)).toEqual([second.refresh_token]);

    await expectError(await refresh(first.refresh_token), 400, "invalid_grant");
    expect((await getData("/v3/users/self/dataRange", first.access_token)).status).toBe(200);
    expect((await getData("/v3/users/self/dataRange", second.access_token)).status).toBe(200);
    expect((await refresh(second.refresh_token)).status).toBe(200);
  });

  it("lets only one of two concurrent refreshes with the same token through", async () => {
    const { refresh_token } = dexcom.issuePair(user);
    const statuses = (await Promise.all([refresh(refresh_token), refresh(refresh_token)])).map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 400]);
  });

  it("refuses an unknown refresh token", async () => {
    await expectError(await refresh("never-issued"), 400, "invalid_grant");
  });
});

describe("data endpoints", () => {
  it("answer 401 without a token, for an unknown one, an expired one and one past its lifetime", async () => {
    const pair = dexcom.issuePair(user);
    expect((await getData("/v3/users/self/dataRange", null)).status).toBe(401);
    expect((await getData("/v3/users/self/dataRange", "unknown")).status).toBe(401);
    expect((await getData("/v3/users/self/dataRange", pair.access_token)).status).toBe(200);

    dexcom.expireAccessToken(pair.access_token);
    expect((await getData("/v3/users/self/dataRange", pair.access_token)).status).toBe(401);

    const other = dexcom.issuePair(user);
    vi.spyOn(Date, "now").mockReturnValue(Date.now() + 7200 * 1000);
    expect((await getData("/v3/users/self/egvs?startDate=2026-11-28T00:00:00&endDate=2026-11-29T00:00:00", other.access_token)).status).toBe(401);
  });

  it("dataRange gives the user's id and the first and last reading, or null egvs", async () => {
    const { access_token } = dexcom.issuePair(user);
    const empty = await (await getData("/v3/users/self/dataRange", access_token)).json();
    expect(empty).toEqual({ recordType: "dataRange", recordVersion: "3.0", userId: user.dexcomUserId, calibrations: null, egvs: null, events: null });

    const series = egvSeries(new Date("2026-11-28T10:00:00Z"), 3);
    user.egvs.push(series[2]!, series[0]!, series[1]!);
    const body = (await (await getData("/v3/users/self/dataRange", access_token)).json()) as { egvs: unknown };
    expect(body.egvs).toEqual({
      start: { systemTime: "2026-11-28T10:00:00", displayTime: "2026-11-28T02:00:00-08:00" },
      end: { systemTime: "2026-11-28T10:10:00", displayTime: "2026-11-28T02:10:00-08:00" },
    });
  });

  it("egvs gives the records within [startDate, endDate] in stored order", async () => {
    const { access_token } = dexcom.issuePair(user);
    const series = egvSeries(new Date("2026-11-28T10:00:00Z"), 12);
    const late = series.pop()!; // 10:55, stored first to show the order is kept
    user.egvs.push(late, ...series);
    const other = dexcom.addUser();
    other.egvs.push(...egvSeries(new Date("2026-11-28T10:00:00Z"), 12));

    const query = "startDate=2026-11-28T10:10:00&endDate=2026-11-28T10:30:00";
    const response = await getData(`/v3/users/self/egvs?${query}`, access_token);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { records: { recordId: string; systemTime: string }[] };
    expect(body).toMatchObject({ recordType: "egv", recordVersion: "3.0", userId: user.dexcomUserId });
    expect(body.records.map((r) => r.systemTime)).toEqual(
      ["10:10", "10:15", "10:20", "10:25", "10:30"].map((t) => `2026-11-28T${t}:00`),
    );
    expect(body.records[0]).toEqual(series[2]);

    const all = await getData("/v3/users/self/egvs?startDate=2026-11-28T00:00:00&endDate=2026-11-29T00:00:00", access_token);
    const allIds = ((await all.json()) as typeof body).records.map((r) => r.recordId);
    expect(allIds).toEqual(user.egvs.map((r) => r.recordId));
  });

  it.each([
    ["no startDate", "endDate=2026-11-28T10:00:00"],
    ["no endDate", "startDate=2026-11-28T10:00:00"],
    ["a Z suffix", "startDate=2026-11-28T10:00:00Z&endDate=2026-11-29T10:00:00Z"],
    ["an offset", "startDate=2026-11-28T10:00:00%2B01:00&endDate=2026-11-29T10:00:00%2B01:00"],
    ["fractional seconds", "startDate=2026-11-28T10:00:00.000&endDate=2026-11-29T10:00:00.000"],
    ["no seconds", "startDate=2026-11-28T10:00&endDate=2026-11-29T10:00"],
    ["a date only", "startDate=2026-11-28&endDate=2026-11-29"],
    ["an impossible date", "startDate=2026-02-30T10:00:00&endDate=2026-03-05T10:00:00"],
    ["end before start", "startDate=2026-11-28T10:00:00&endDate=2026-11-28T09:00:00"],
    ["end equal to start", "startDate=2026-11-28T10:00:00&endDate=2026-11-28T10:00:00"],
    ["a window of 30 days and a second", "startDate=2026-10-01T00:00:00&endDate=2026-10-31T00:00:01"],
  ])("egvs answers 400 JSON for %s", async (_name, query) => {
    const { access_token } = dexcom.issuePair(user);
    const response = await getData(`/v3/users/self/egvs?${query}`, access_token);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toContain("application/json");
    await response.json();
  });

  it("egvs accepts a window of exactly 30 days", async () => {
    const { access_token } = dexcom.issuePair(user);
    const response = await getData("/v3/users/self/egvs?startDate=2026-10-01T00:00:00&endDate=2026-10-31T00:00:00", access_token);
    expect(response.status).toBe(200);
  });

  it("any other path is 404", async () => {
    const { access_token } = dexcom.issuePair(user);
    expect((await getData("/v3/users/self/devices", access_token)).status).toBe(404);
    expect((await getData("/v2/users/self/egvs", access_token)).status).toBe(404);
  });
});

describe("faults", () => {
  it("apply in the order queued, count as calls, and leave the code usable", async () => {
    const code = dexcom.authorize(user);
    dexcom.failNext("token", { kind: "status", status: 503, body: "upstream down", headers: { "x-fault": "yes" } });
    dexcom.failNext("token", { kind: "not_json" });
    dexcom.failNext("token", { kind: "rate_limited", retryAfter: "120" });
    dexcom.failNext("token", { kind: "rate_limited" });

    const statusFault = await exchange(code);
    expect(statusFault.status).toBe(503);
    expect(statusFault.headers.get("x-fault")).toBe("yes");
    expect(await statusFault.text()).toBe("upstream down");

    const notJson = await exchange(code);
    expect(notJson.status).toBe(200);
    expect(notJson.headers.get("content-type")).toContain("text/html");
    await expect(notJson.json()).rejects.toThrow();

    const limited = await exchange(code);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("120");

    const limitedBare = await exchange(code);
    expect(limitedBare.status).toBe(429);
    expect(limitedBare.headers.has("retry-after")).toBe(false);

    expect((await exchange(code)).status).toBe(200);
    expect(dexcom.counts).toMatchObject({ token: 5, exchange: 5 });
  });

  it("repeat `times` times and stay with their endpoint", async () => {
    const { access_token } = dexcom.issuePair(user);
    dexcom.failNext("egvs", { kind: "status", status: 500 }, 2);
    const egvs = () => getData("/v3/users/self/egvs?startDate=2026-11-28T00:00:00&endDate=2026-11-29T00:00:00", access_token);
    expect((await getData("/v3/users/self/dataRange", access_token)).status).toBe(200);
    expect((await egvs()).status).toBe(500);
    expect((await egvs()).status).toBe(500);
    expect((await egvs()).status).toBe(200);
  });

  it("a delay answers normally after the time", async () => {
    const { access_token } = dexcom.issuePair(user);
    dexcom.failNext("dataRange", { kind: "delay", ms: 300 });
    const started = performance.now();
    const delayed = await getData("/v3/users/self/dataRange", access_token);
    expect(performance.now() - started).toBeGreaterThanOrEqual(280);
    expect(delayed.status).toBe(200);
    expect(((await delayed.json()) as { userId: string }).userId).toBe(user.dexcomUserId);

    const quick = performance.now();
    expect((await getData("/v3/users/self/dataRange", access_token)).status).toBe(200);
    expect(performance.now() - quick).toBeLessThan(250);
  });

  it("cancelDelays ends a waiting delay at once", async () => {
    const { access_token } = dexcom.issuePair(user);
    dexcom.failNext("dataRange", { kind: "delay", ms: 20_000 });
    const started = performance.now();
    const pending = getData("/v3/users/self/dataRange", access_token);
    await new Promise((resolve) => setTimeout(resolve, 50));
    dexcom.cancelDelays();
    expect((await pending).status).toBe(503);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("reset forgets faults and counts, not users or tokens", async () => {
    const { access_token } = dexcom.issuePair(user);
    dexcom.failNext("dataRange", { kind: "status", status: 500 });
    expect((await fetch(`${BASE}/v2/oauth2/login?client_id=x`)).status).toBe(400);
    dexcom.reset();
    expect(dexcom.counts).toEqual({ token: 0, exchange: 0, refresh: 0, dataRange: 0, egvs: 0, login: 0 });
    expect((await getData("/v3/users/self/dataRange", access_token)).status).toBe(200);
  });
});

describe("counts", () => {
  it("counts each kind of call, token calls also by grant type", async () => {
    const code = dexcom.authorize(user);
    const pair = (await (await exchange(code)).json()) as TokenBody;
    await refresh(pair.refresh_token);
    await refresh(pair.refresh_token); // refused, still a call
    await postToken({ grant_type: "password" });
    await getData("/v3/users/self/dataRange", pair.access_token);
    await getData("/v3/users/self/egvs?startDate=2026-11-28T00:00:00&endDate=2026-11-29T00:00:00", pair.access_token);
    await getData("/v3/users/self/egvs", null);
    await fetch(`${BASE}/v2/oauth2/login`);
    expect(dexcom.counts).toEqual({ token: 4, exchange: 1, refresh: 2, dataRange: 1, egvs: 2, login: 1 });
  });
});

describe("egvSeries", () => {
  it("makes G7 iOS readings every 5 minutes with offset-less systemTime and offset displayTime", () => {
    const series = egvSeries(new Date("2026-11-28T23:55:00Z"), 300);
    expect(series).toHaveLength(300);
    expect(series[0]).toMatchObject({
      systemTime: "2026-11-28T23:55:00",
      displayTime: "2026-11-28T15:55:00-08:00",
      status: "ok",
      ...G7_IOS_READING,
    });
    // What the shared fields say, checked here on their own: a steady G7 on iOS, in mg/dL.
    expect(G7_IOS_READING).toEqual({ trend: "flat", trendRate: 0.1, unit: "mg/dL", rateUnit: "mg/dL/min", displayDevice: "iOS", transmitterGeneration: "g7" });
    expect(series[1]!.systemTime).toBe("2026-11-29T00:00:00");
    expect(new Set(series.map((r) => r.recordId)).size).toBe(300);
    for (const [i, record] of series.entries()) {
      expect(Date.parse(`${record.systemTime}Z`)).toBe(Date.parse(record.displayTime));
      expect(Number.isInteger(record.value)).toBe(true);
      expect(record.value).toBeGreaterThanOrEqual(60);
      expect(record.value).toBeLessThanOrEqual(260);
      if (i > 0) expect(record.transmitterTicks).toBeGreaterThan(series[i - 1]!.transmitterTicks);
    }
    const values = series.map((r) => r.value as number);
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(150);
  });

  it("takes values from the option, null included", () => {
    const series = egvSeries(new Date("2026-11-28T10:00:00Z"), 3, { value: (i) => (i === 1 ? null : 100 + i) });
    expect(series.map((r) => r.value)).toEqual([100, null, 102]);
  });
});

describe("as a real HTTP server", () => {
  it("serves the whole flow over node:http and closes promptly with keep-alive and a waiting delay", async () => {
    const { url, close } = await dexcom.listen();
    server.use(http.all(`${url}/*`, () => passthrough()));
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const code = dexcom.authorize(user);
      const response = await exchange(code, CLIENT.redirectUri, url);
      expect(response.status).toBe(200);
      const pair = (await response.json()) as TokenBody;
      await expectError(await exchange(code, CLIENT.redirectUri, url), 400, "invalid_grant");

      user.egvs.push(...egvSeries(new Date("2026-11-28T10:00:00Z"), 4));
      const egvs = await getData("/v3/users/self/egvs?startDate=2026-11-28T10:05:00&endDate=2026-11-28T10:10:00", pair.access_token, url);
      expect(egvs.status).toBe(200);
      expect(egvs.headers.get("content-type")).toBe("application/json");
      expect(((await egvs.json()) as { records: unknown[] }).records).toHaveLength(2);
      expect((await getData("/v3/users/self/egvs", "wrong", url)).status).toBe(401);
      expect(dexcom.counts).toMatchObject({ token: 2, exchange: 2, egvs: 2 });

      dexcom.failNext("dataRange", { kind: "delay", ms: 20_000 });
      const waiting = getData("/v3/users/self/dataRange", pair.access_token, url);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = performance.now();
      await close();
      expect(performance.now() - started).toBeLessThan(1000);
      await expect(waiting).rejects.toThrow();
    } finally {
      await close();
    }
  });
});
