// GET /dexcom-egvs: range validation, the dates Dexcom is asked for, Dexcom's body passed through
// byte for byte, Dexcom's failures as the contract's errors, and no token ever shown.
import { http, HttpResponse } from "msw";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CallResult, startTestBackend, type TestBackend } from "./support/backend.ts";
import { ERROR_KEYS, registeredCaller } from "./support/contract-helpers.ts";
import {
  connectedCaller,
  DEXCOM_ENV,
  type DexcomBackend,
  fakeDexcomFor,
  tokenRows,
} from "./support/dexcom-backend.ts";
import { egvSeries, type EgvRecord } from "./support/fake-dexcom.ts";

/**
 * startDexcomBackend, with one difference: the msw handler in front of the fake Dexcom records the
 * query of every egvs call (so tests see exactly what Dexcom was asked for) and can fail the next
 * egvs calls at the network level, which a fault of the fake cannot (it always answers).
 */
interface RecordingBackend extends DexcomBackend {
  egvsQueries: URLSearchParams[];
  dropNextEgvsConnection(): void;
}

async function startRecordingBackend(): Promise<RecordingBackend> {
  const dexcom = fakeDexcomFor(DEXCOM_ENV);
  const egvsQueries: URLSearchParams[] = [];
  let connectionsToDrop = 0;
  const handler = http.all(`${DEXCOM_ENV.DEXCOM_API_BASE_URL}/*`, ({ request }) => {
    const url = new URL(request.url);
    if (url.pathname === "/v3/users/self/egvs") {
      egvsQueries.push(url.searchParams);
      if (connectionsToDrop > 0) {
        connectionsToDrop--;
        return HttpResponse.error();
      }
    }
    return dexcom.handle(request);
  });
  const backend = await startTestBackend(DEXCOM_ENV, { handlers: [handler] });
  const closeBackend = backend.close;
  return Object.assign(backend, {
    dexcom,
    egvsQueries,
    dropNextEgvsConnection: () => void connectionsToDrop++,
    close: async () => {
      dexcom.cancelDelays();
      await closeBackend();
    },
  });
}

// Every answer any test got, so the last test can look for secrets in all of them.
const answers: CallResult[] = [];

async function getEgvs(
  backend: TestBackend,
  token: string | undefined,
  query: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<CallResult> {
  // URLSearchParams encodes the "+" of an offset, which a raw query string would turn into a space.
  const answer = await backend.call("dexcom-egvs", { path: `?${new URLSearchParams(query)}`, token, headers });
  answers.push(answer);
  return answer;
}

function expectErrorEnvelope(answer: CallResult, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.body?.error).toBe(code);
  expect(Object.keys(answer.body).filter((key) => key !== "details").sort()).toEqual(ERROR_KEYS);
  expect(typeof answer.body.message).toBe("string");
  expect(answer.body.request_id).toBe(answer.headers.get("x-request-id"));
}

describe("without the DEXCOM_* variables", () => {
  let plain: TestBackend;
  beforeAll(async () => (plain = await startTestBackend()));
  afterAll(() => plain.close());

  it("answers 503 not_configured to a registered caller", async () => {
    const token = await registeredCaller(plain, "egvs-unconfigured-uid");
    const answer = await getEgvs(plain, token, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" });
    expectErrorEnvelope(answer, 503, "not_configured");
  });

  it("answers 503 not_configured without a token too (not 401)", async () => {
    const answer = await getEgvs(plain, undefined, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" });
    expectErrorEnvelope(answer, 503, "not_configured");
  });
});

describe("with Dexcom configured", () => {
  let backend: RecordingBackend;
  beforeAll(async () => (backend = await startRecordingBackend()));
  afterAll(() => backend.close());
  const db = () => backend.database.db;

  /** The one query Dexcom received since `before` calls had been recorded. */
  function onlyQuerySince(before: number): Record<string, string> {
    expect(backend.egvsQueries.length).toBe(before + 1);
    return Object.fromEntries(backend.egvsQueries[before]!);
  }

  /** The caller's token rows: still exactly one, and active. */
  async function expectTokenKept(uid: string): Promise<void> {
    const rows = await tokenRows(db(), uid);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.is_revoked).not.toBe(true);
  }

  describe("range validation: 400 validation_failed naming the field, and no call to Dexcom", () => {
    const cases: [string, Record<string, string>, string[]][] = [
      ["missing startDate", { endDate: "2026-11-28T11:00:00Z" }, ["startDate"]],
      ["missing endDate", { startDate: "2026-11-28T10:00:00Z" }, ["endDate"]],
      ["both missing", {}, ["startDate", "endDate"]],
      ["an unparseable startDate", { startDate: "yesterday", endDate: "2026-11-28T11:00:00Z" }, ["startDate"]],
      ["an unparseable endDate (Date.parse would take it)", { startDate: "2026-11-28T10:00:00Z", endDate: "Nov 28 2026 11:00" }, ["endDate"]],
      ["an empty startDate", { startDate: "", endDate: "2026-11-28T11:00:00Z" }, ["startDate"]],
      ["an impossible startDate (February 30)", { startDate: "2026-02-30T00:00:00Z", endDate: "2026-03-03T00:00:00Z" }, ["startDate"]],
      ["an impossible endDate (February 29 of a common year)", { startDate: "2026-02-27", endDate: "2026-02-29" }, ["endDate"]],
      ["hour 24", { startDate: "2026-11-28T24:00:00Z", endDate: "2026-11-29T01:00:00Z" }, ["startDate"]],
      ["end equal to start", { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T10:00:00Z" }, ["endDate"]],
      ["end equal to start, written in another offset", { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T12:00:00+02:00" }, ["endDate"]],
      ["end before start", { startDate: "2026-11-28T11:00:00Z", endDate: "2026-11-28T10:00:00Z" }, ["endDate"]],
      ["more than 30 days apart (by one second)", { startDate: "2026-01-01T00:00:00Z", endDate: "2026-01-31T00:00:01Z" }, ["endDate"]],
      ["more than 30 days apart (by half a second)", { startDate: "2026-01-01T00:00:00Z", endDate: "2026-01-31T00:00:00.500Z" }, ["endDate"]],
      ["an end in year 9999 that rounds up into year 10000", { startDate: "9999-12-31T00:00:00Z", endDate: "9999-12-31T23:59:59.500Z" }, ["endDate"]],
      ["an end in year 9999 whose offset puts it in year 10000 UTC", { startDate: "9999-12-31T22:00:00Z", endDate: "9999-12-31T23:30:00-01:00" }, ["endDate"]],
    ];

    it.each(cases.map(([name, query, paths], i) => [name, query, paths, i] as const))("%s", async (_, query, paths, i) => {
      const { token } = await connectedCaller(backend, `egvs-range-${i}-uid`);
      const calls = backend.dexcom.counts.egvs;
      const queries = backend.egvsQueries.length;
      const answer = await getEgvs(backend, token, query);
      expectErrorEnvelope(answer, 400, "validation_failed");
      expect(answer.body.details.map((detail: { path: string }) => detail.path)).toEqual(paths);
      for (const detail of answer.body.details) expect(detail.message).toMatch(/\S/);
      expect(backend.dexcom.counts.egvs).toBe(calls);
      expect(backend.egvsQueries.length).toBe(queries);
    });

    // URLSearchParams.get would take the first of two, a proxy in front perhaps the last.
    it.each([
      ["startDate given twice, the same both times", [["startDate", "2026-11-28T10:00:00Z"], ["startDate", "2026-11-28T10:00:00Z"], ["endDate", "2026-11-28T11:00:00Z"]], ["startDate"]],
      ["endDate given twice", [["startDate", "2026-11-28T10:00:00Z"], ["endDate", "2026-11-28T11:00:00Z"], ["endDate", "2026-11-28T12:00:00Z"]], ["endDate"]],
      ["both given twice, one name percent-encoded", [["startDate", "2026-11-28T10:00:00Z"], ["endDate", "x"], ["start%44ate", "y"], ["endDate", "z"]], ["startDate", "endDate"]],
    ] as const)("%s: 400 validation_failed, each named once, and no call to Dexcom", async (name, pairs, paths) => {
      const { token } = await connectedCaller(backend, `egvs-repeated-${paths.join("-")}-${pairs.length}-uid`);
      const calls = backend.dexcom.counts.egvs;
      const path = `?${pairs.map(([key, value]) => `${key}=${encodeURIComponent(value)}`).join("&")}`;
      const answer = await backend.call("dexcom-egvs", { path, token });
      answers.push(answer);
      expectErrorEnvelope(answer, 400, "validation_failed");
      expect(answer.body.details, name).toEqual(paths.map((field) => ({ path: field, message: "is given more than once" })));
      expect(backend.dexcom.counts.egvs).toBe(calls);
    });

    it("exactly 30 days apart is fine: 200, and Dexcom is asked for those 30 days", async () => {
      const { token } = await connectedCaller(backend, "egvs-30-days-uid");
      const before = backend.egvsQueries.length;
      const answer = await getEgvs(backend, token, { startDate: "2026-01-01T00:00:00Z", endDate: "2026-01-31T00:00:00Z" });
      expect(answer.status).toBe(200);
      expect(onlyQuerySince(before)).toEqual({ startDate: "2026-01-01T00:00:00", endDate: "2026-01-31T00:00:00" });
    });

    it("the latest end Dexcom's format can write (9999-12-31T23:59:59) is fine", async () => {
      const { token } = await connectedCaller(backend, "egvs-year-9999-uid");
      const before = backend.egvsQueries.length;
      const answer = await getEgvs(backend, token, { startDate: "9999-12-31T00:00:00Z", endDate: "9999-12-31T23:59:59Z" });
      expect(answer.status).toBe(200);
      expect(onlyQuerySince(before)).toEqual({ startDate: "9999-12-31T00:00:00", endDate: "9999-12-31T23:59:59" });
    });

    // The window is checked before rounding (start down, end up), so a window just under 30 days
    // can reach Dexcom as 30 days and one second, which Dexcom refuses with 400 (see
    // shared/reference/dexcom-api.md): the caller would get 502 for a valid request.
    it("a window just under 30 days with fractions is never sent to Dexcom as more than 30 days", async () => {
      const { token } = await connectedCaller(backend, "egvs-30-days-fraction-uid");
      const before = backend.egvsQueries.length;
      const answer = await getEgvs(backend, token, { startDate: "2026-01-01T00:00:00.900Z", endDate: "2026-01-31T00:00:00.500Z" });
      // The caller's window is 30 days less 0.4 s: within the contract's "at most 30 days apart".
      expect(answer.status).toBe(200);
      const sent = onlyQuerySince(before);
      const span = Date.parse(`${sent.endDate}Z`) - Date.parse(`${sent.startDate}Z`);
      expect(span).toBeLessThanOrEqual(30 * 24 * 3600 * 1000);
    });
  });

  describe("the dates Dexcom receives: UTC, YYYY-MM-DDTHH:mm:ss", () => {
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      [
        "an offset is converted to UTC",
        { startDate: "2026-11-28T12:00:00+02:00", endDate: "2026-11-28T13:30:00+02:00" },
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:30:00" },
      ],
      [
        "a negative offset crosses midnight",
        { startDate: "2026-11-27T20:00:00-05:00", endDate: "2026-11-27T21:00:00-0500" },
        { startDate: "2026-11-28T01:00:00", endDate: "2026-11-28T02:00:00" },
      ],
      [
        "no offset means UTC",
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:00" },
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:00:00" },
      ],
      [
        "a date only is midnight UTC",
        { startDate: "2026-11-28", endDate: "2026-11-29" },
        { startDate: "2026-11-28T00:00:00", endDate: "2026-11-29T00:00:00" },
      ],
      [
        "fractions: start rounded down, end rounded up, to the second",
        { startDate: "2026-11-28T10:00:00.999Z", endDate: "2026-11-28T11:00:00.500Z" },
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:00:01" },
      ],
      [
        "a whole-second end with a zero fraction is not rounded up",
        { startDate: "2026-11-28T10:00:00.000Z", endDate: "2026-11-28T11:00:00.000Z" },
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:00:00" },
      ],
      [
        "Z",
        { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" },
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:00:00" },
      ],
      [
        "lower-case z (and t) mean the same",
        { startDate: "2026-11-28t10:00:00z", endDate: "2026-11-28T11:00:00z" },
        { startDate: "2026-11-28T10:00:00", endDate: "2026-11-28T11:00:00" },
      ],
    ];

    it.each(cases.map(([name, query, sent], i) => [name, query, sent, i] as const))("%s", async (_, query, sent, i) => {
      const { token } = await connectedCaller(backend, `egvs-convert-${i}-uid`);
      const before = backend.egvsQueries.length;
      const answer = await getEgvs(backend, token, query);
      expect(answer.status).toBe(200);
      expect(onlyQuerySince(before)).toEqual(sent);
    });

    it("the readings that come back are those of the converted window", async () => {
      const { token, user } = await connectedCaller(backend, "egvs-window-uid");
      // Every 5 minutes from 09:30 to 11:25 UTC; the window 12:00-13:00 at +02:00 is 10:00-11:00 UTC.
      user.egvs.push(...egvSeries(new Date("2026-11-28T09:30:00Z"), 24));
      const answer = await getEgvs(backend, token, { startDate: "2026-11-28T12:00:00+02:00", endDate: "2026-11-28T13:00:00+02:00" });
      expect(answer.status).toBe(200);
      const times = answer.body.records.map((record: EgvRecord) => record.systemTime);
      expect(times[0]).toBe("2026-11-28T10:00:00");
      expect(times.at(-1)).toBe("2026-11-28T11:00:00");
      expect(times).toHaveLength(13);
      expect(answer.body.userId).toBe(user.dexcomUserId);
    });
  });

  describe("Dexcom's body, passed through", () => {
    it("exactly as Dexcom sent it, byte for byte, as JSON", async () => {
      const { token } = await connectedCaller(backend, "egvs-bytes-uid");
      // Spacing, key order, escapes and number spellings that a parse and re-serialisation would change.
      const body =
        '{ "recordType":"egv","recordVersion" : "3.0",\n  "userId":"u-1", "records":[{"recordId":"r1","systemTime":"2026-11-28T10:00:00",' +
        '"displayTime":"2026-11-28T02:00","value":null,"status":null,"trend":"sidewaysUp","trendRate":1.50,' +
        '"unit":"mg/dL","transmitterTicks":1e3,"note":"caf\\u00e9 \u2603","extra":{"nested":[1,2,3]}}],"unknownTopLevel":true }';
      backend.dexcom.failNext("egvs", { kind: "status", status: 200, body, headers: { "content-type": "application/json" } });
      const answer = await getEgvs(backend, token, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" });
      expect(answer.status).toBe(200);
      expect(answer.text).toBe(body);
      expect(answer.headers.get("content-type")).toMatch(/^application\/json\b/);
    });

    it("odd records in a user's data come back unchanged", async () => {
      const { token, user } = await connectedCaller(backend, "egvs-odd-uid");
      const [first, second, third] = egvSeries(new Date("2026-11-28T10:00:00Z"), 3);
      const odd: EgvRecord[] = [
        { ...first!, value: null, status: null, trend: null, trendRate: null },
        { ...second!, trend: "sidewaysUp", transmitterGeneration: "g715day", displayDevice: "watch", futureField: { a: [1, null] } },
        { ...third!, displayTime: "2026-11-28T02:10", transmitterId: null, unit: "mmol/L", value: 7 },
      ];
      user.egvs.push(...odd);
      const answer = await getEgvs(backend, token, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" });
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ recordType: "egv", recordVersion: "3.0", userId: user.dexcomUserId, records: odd });
    });
  });

  describe("Dexcom's failures: the contract's errors, and the connection is kept", () => {
    const window = { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" };

    /** After a failure: the token row is untouched, nothing was refreshed, and the next call works. */
    async function expectConnectionIntact(uid: string, token: string, refreshesBefore: number): Promise<void> {
      await expectTokenKept(uid);
      expect(backend.dexcom.counts.refresh).toBe(refreshesBefore);
      expect((await getEgvs(backend, token, window)).status).toBe(200);
    }

    it.each([
      ["120", "120"],
      [undefined, "60"],
      ["soon", "60"],
    ])("Dexcom 429 with Retry-After %j: 429 rate_limited, Retry-After %s", async (retryAfter, expected) => {
      const uid = `egvs-429-${retryAfter ?? "none"}-uid`;
      const { token } = await connectedCaller(backend, uid);
      const refreshes = backend.dexcom.counts.refresh;
      backend.dexcom.failNext("egvs", retryAfter === undefined ? { kind: "rate_limited" } : { kind: "rate_limited", retryAfter });
      const answer = await getEgvs(backend, token, window);
      expectErrorEnvelope(answer, 429, "rate_limited");
      expect(answer.headers.get("retry-after")).toBe(expected);
      await expectConnectionIntact(uid, token, refreshes);
    });

    const unavailable: [string, () => void][] = [
      ["Dexcom 500", () => backend.dexcom.failNext("egvs", { kind: "status", status: 500, body: "internal" })],
      ["Dexcom 503", () => backend.dexcom.failNext("egvs", { kind: "status", status: 503, body: '{"error":"down"}' })],
      ["a 200 that is not JSON", () => backend.dexcom.failNext("egvs", { kind: "not_json" })],
      ["a 200 JSON array", () => backend.dexcom.failNext("egvs", { kind: "status", status: 200, body: "[]", headers: { "content-type": "application/json" } })],
      ["a 200 JSON string", () => backend.dexcom.failNext("egvs", { kind: "status", status: 200, body: '"records"', headers: { "content-type": "application/json" } })],
      ["a network failure", () => backend.dropNextEgvsConnection()],
    ];

    it.each(unavailable.map(([name, fault], i) => [name, fault, i] as const))("%s: 502 dexcom_unavailable", async (_, fault, i) => {
      const uid = `egvs-502-${i}-uid`;
      const { token } = await connectedCaller(backend, uid);
      const refreshes = backend.dexcom.counts.refresh;
      const calls = backend.egvsQueries.length;
      fault();
      const answer = await getEgvs(backend, token, window);
      expectErrorEnvelope(answer, 502, "dexcom_unavailable");
      // The fault was met (Dexcom was called), and nothing of Dexcom's answer leaks to the caller.
      expect(backend.egvsQueries.length).toBe(calls + 1);
      expect(answer.text).not.toMatch(/internal|down|http_|not_json|network|<html/i);
      await expectConnectionIntact(uid, token, refreshes);
    });

    // The one slow test: Dexcom has 10 s, and every request is answered within 15 s (the timeout).
    it("Dexcom slower than 10 s: 502 dexcom_unavailable", { timeout: 15_000 }, async () => {
      const uid = "egvs-slow-uid";
      const { token } = await connectedCaller(backend, uid);
      const refreshes = backend.dexcom.counts.refresh;
      backend.dexcom.failNext("egvs", { kind: "delay", ms: 11_000 });
      const answer = await getEgvs(backend, token, window);
      expectErrorEnvelope(answer, 502, "dexcom_unavailable");
      await expectConnectionIntact(uid, token, refreshes);
    });
  });

  describe("HTTP", () => {
    it("POST is 405 method_not_allowed with Allow", async () => {
      const { token } = await connectedCaller(backend, "egvs-post-uid");
      const calls = backend.dexcom.counts.egvs;
      const answer = await backend.call("dexcom-egvs", {
        method: "POST",
        path: "?startDate=2026-11-28T10:00:00Z&endDate=2026-11-28T11:00:00Z",
        token,
        json: {},
      });
      answers.push(answer);
      expectErrorEnvelope(answer, 405, "method_not_allowed");
      expect(answer.headers.get("allow")?.split(/,\s*/).sort()).toEqual(["GET", "OPTIONS"]);
      expect(backend.dexcom.counts.egvs).toBe(calls);
    });

    it("OPTIONS is 204 with CORS headers", async () => {
      const answer = await backend.call("dexcom-egvs", { method: "OPTIONS", headers: { origin: "https://app.example.com" } });
      expect(answer.status).toBe(204);
      expect(answer.text).toBe("");
      expect(answer.headers.get("access-control-allow-origin")).toBe("*");
      expect(answer.headers.get("access-control-allow-methods")).toMatch(/\bGET\b/);
      const allowed = answer.headers.get("access-control-allow-headers")?.split(/,\s*/) ?? [];
      expect(allowed).toEqual(expect.arrayContaining(["authorization", "x-request-id"]));
    });

    it("echoes the caller's x-request-id, on success and in errors", async () => {
      const { token } = await connectedCaller(backend, "egvs-request-id-uid");
      const ok = await getEgvs(backend, token, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" }, { "x-request-id": "egvs-ok.1" });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("x-request-id")).toBe("egvs-ok.1");
      const bad = await getEgvs(backend, token, { startDate: "2026-11-28T10:00:00Z" }, { "x-request-id": "egvs-bad_2" });
      expectErrorEnvelope(bad, 400, "validation_failed");
      expect(bad.headers.get("x-request-id")).toBe("egvs-bad_2");
      expect(bad.body.request_id).toBe("egvs-bad_2");
    });

    it("without a token: 401 missing_token, and no call to Dexcom", async () => {
      const calls = backend.dexcom.counts.egvs;
      const answer = await getEgvs(backend, undefined, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" });
      expectErrorEnvelope(answer, 401, "missing_token");
      expect(backend.dexcom.counts.egvs).toBe(calls);
    });

    it("a registered caller who never connected: 409 dexcom_not_connected", async () => {
      const token = await registeredCaller(backend, "egvs-unconnected-uid");
      const answer = await getEgvs(backend, token, { startDate: "2026-11-28T10:00:00Z", endDate: "2026-11-28T11:00:00Z" });
      expectErrorEnvelope(answer, 409, "dexcom_not_connected");
    });
  });

  // Last, so that it sees the answers and logs of every test above.
  describe("secrets", () => {
    it("no Dexcom token, code or the client secret appears in any answer or log line", async () => {
      const secrets = [...backend.dexcom.secretsIssued, DEXCOM_ENV.DEXCOM_CLIENT_SECRET];
      // Dexcom issued tokens above (one pair per connected caller), and the checks ran on real output.
      expect(backend.dexcom.secretsIssued.length).toBeGreaterThan(20);
      expect(answers.length).toBeGreaterThan(40);
      expect(backend.logs.length).toBeGreaterThan(40);
      const answerText = answers.map((answer) => `${answer.text}\n${JSON.stringify([...answer.headers])}`).join("\n");
      const logText = backend.logs.join("\n");
      for (const secret of secrets) {
        expect(answerText).not.toContain(secret);
        expect(logText).not.toContain(secret);
      }
    });
  });
});
