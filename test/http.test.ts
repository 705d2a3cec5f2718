import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFunction } from "../shared/http/app.ts";
import { jsonLogger } from "../shared/http/log.ts";
import { requestIdFor } from "../shared/http/request-id.ts";
import { BASE_URL, startTestBackend, type TestBackend, toResult } from "./support/backend.ts";
import {
  CONTRACT_ALLOWED_HEADERS,
  ERROR_KEYS,
  registeredCaller,
  snapshotTables,
  tokenBody,
} from "./support/contract-helpers.ts";

let backend: TestBackend;
beforeAll(async () => (backend = await startTestBackend()));
afterAll(() => backend.close());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("x-request-id", () => {
  it("echoes a sane id the caller sent", async () => {
    const { headers } = await backend.call("health", { headers: { "x-request-id": "client.req_42-A" } });
    expect(headers.get("x-request-id")).toBe("client.req_42-A");
  });

  it("keeps a 128-character id", async () => {
    const id = "a".repeat(128);
    const { headers } = await backend.call("health", { headers: { "x-request-id": id } });
    expect(headers.get("x-request-id")).toBe(id);
  });

  it.each([
    ["129 characters", "a".repeat(129)],
    ["a space", "abc def"],
    ["a tab", "abc\tdef"],
    ["a slash", "abc/def"],
    ["a colon and quotes", 'a:"b"'],
    ["non-ASCII letters", "caf\u00e9"],
    ["a JSON-breaking brace", "abc}{"],
  ])("replaces an id with %s by a fresh one", async (_, id) => {
    const { headers } = await backend.call("health", { headers: { "x-request-id": id } });
    const answered = headers.get("x-request-id");
    expect(answered).not.toBe(id);
    expect(answered).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
  });

  it("replaces an id with a newline by a fresh one (checked directly: fetch's Headers refuse to carry one)", () => {
    // undici (like Deno and every HTTP parser) throws on "a\nb" in a header value, so it can only
    // reach requestIdFor through an object that skips that check.
    expect(() => new Headers({ "x-request-id": "a\nb" })).toThrow();
    const forged = { headers: { get: (name: string) => (name === "x-request-id" ? "abc\ninjected" : null) } } as unknown as Request;
    expect(requestIdFor(forged)).toMatch(UUID);
  });

  it("makes a fresh id when none is sent, different for each request", async () => {
    const first = await backend.call("health");
    const second = await backend.call("health");
    expect(first.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(first.headers.get("x-request-id")).not.toBe(second.headers.get("x-request-id"));
  });

  it("puts the same id in an error body's request_id (caller's id)", async () => {
    const { headers, body } = await backend.call("users", { headers: { "x-request-id": "trace-401" } });
    expect(body.request_id).toBe("trace-401");
    expect(headers.get("x-request-id")).toBe("trace-401");
  });

  it("puts the same id in an error body's request_id (fresh id)", async () => {
    const { headers, body } = await backend.call("users", { headers: { "x-request-id": "bad id" } });
    expect(body.request_id).toBe(headers.get("x-request-id"));
    expect(body.request_id).not.toBe("bad id");
  });

  it("names the request id in the request's log line", async () => {
    await backend.call("health", { headers: { "x-request-id": "logged-request-77" } });
    const line = backend.logs.find((entry) => entry.includes("logged-request-77"));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ event: "request", request_id: "logged-request-77", status: 200 });
  });
});

describe("headers on every response", () => {
  let token: string;
  beforeAll(async () => (token = await registeredCaller(backend, "headers-uid")));

  const cases: [string, () => Promise<{ status: number; headers: Headers }>, number][] = [
    ["GET /health 200", () => backend.call("health"), 200],
    ["POST /users 200", () => backend.call("users", { method: "POST", token }), 200],
    ["GET /users 200", () => backend.call("users", { token }), 200],
    ["POST /dexcom-tokens 201", () => backend.call("dexcom-tokens", { method: "POST", token, json: tokenBody() }), 201],
    ["GET /dexcom-tokens 200", () => backend.call("dexcom-tokens", { token }), 200],
    ["DELETE /dexcom-tokens 200", () => backend.call("dexcom-tokens", { method: "DELETE", token }), 200],
    ["400 validation_failed", () => backend.call("dexcom-tokens", { method: "POST", token, json: {} }), 400],
    ["401 missing_token", () => backend.call("users"), 401],
    ["404 user_not_found", async () => backend.call("users", { token: await backend.token("nobody-uid") }), 404],
    ["404 not_found", () => backend.call("no-such-function"), 404],
    ["405 method_not_allowed", () => backend.call("users", { method: "PUT", token }), 405],
    ["413 payload_too_large", () => backend.call("users", { method: "POST", token, body: "x".repeat(65_537), headers: { "content-type": "application/json" } }), 413],
    ["415 unsupported_media_type", () => backend.call("users", { method: "POST", token, body: "{}", headers: { "content-type": "text/plain" } }), 415],
    ["OPTIONS 204", () => backend.call("users", { method: "OPTIONS" }), 204],
    ["DELETE /users 204", async () => backend.call("users", { method: "DELETE", token: await registeredCaller(backend, "headers-leaver-uid") }), 204],
  ];

  it.each(cases)("%s carries x-request-id and CORS headers", async (_, send, expected) => {
    const { status, headers } = await send();
    expect(status).toBe(expected);
    expect(headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(headers.get("access-control-allow-origin")).toBe("*");
    expect(headers.get("access-control-allow-headers")).toBe(CONTRACT_ALLOWED_HEADERS);
    expect(headers.get("access-control-allow-methods")).toBeTruthy();
  });

  it("answers a caller's x-request-id on a 204", async () => {
    const leaver = await registeredCaller(backend, "headers-leaver-2-uid");
    const { status, headers } = await backend.call("users", { method: "DELETE", token: leaver, headers: { "x-request-id": "delete-204" } });
    expect(status).toBe(204);
    expect(headers.get("x-request-id")).toBe("delete-204");
  });
});

describe("OPTIONS", () => {
  it.each([
    ["/users", "users", ""],
    ["/dexcom-tokens", "dexcom-tokens", ""],
    ["/health", "health", ""],
    ["an unknown function", "no-such-function", ""],
    ["an unknown path inside a function", "users", "/no/such/path"],
  ])("on %s answers 204 with the CORS headers and no body", async (_, fn, path) => {
    const { status, headers, text } = await backend.call(fn, {
      method: "OPTIONS",
      path,
      headers: { origin: "https://somewhere.example", "access-control-request-method": "POST" },
    });
    expect(status).toBe(204);
    expect(text).toBe("");
    expect(headers.get("access-control-allow-origin")).toBe("*");
    expect(headers.get("access-control-allow-headers")).toBe(CONTRACT_ALLOWED_HEADERS);
    expect(headers.get("access-control-allow-methods")).toBeTruthy();
  });

  it("on a path outside /functions/v1 answers 204", async () => {
    const response = await backend.handler(new Request("http://127.0.0.1:54321/somewhere/else", { method: "OPTIONS" }));
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-headers")).toBe(CONTRACT_ALLOWED_HEADERS);
  });

  it("names the function's methods in Access-Control-Allow-Methods", async () => {
    const { headers } = await backend.call("dexcom-tokens", { method: "OPTIONS" });
    expect(headers.get("access-control-allow-methods")!.split(/,\s*/).sort()).toEqual(["DELETE", "GET", "OPTIONS", "POST"]);
  });

  it("needs no Authorization header, and ignores a bad one", async () => {
    const { status } = await backend.call("dexcom-tokens", { method: "OPTIONS", headers: { authorization: "Bearer junk" } });
    expect(status).toBe(204);
  });
});

describe("unknown paths and methods", () => {
  it("answers an unknown function with 404 not_found", async () => {
    const { status, body } = await backend.call("no-such-function");
    expect(status).toBe(404);
    expect(body.error).toBe("not_found");
  });

  it("answers an unknown path inside a function with 404 not_found", async () => {
    const token = await backend.token("path-uid");
    const { status, body } = await backend.call("users", { path: "/extra", token });
    expect(status).toBe(404);
    expect(body.error).toBe("not_found");
  });

  it("answers a path outside /functions/v1 with 404 not_found", async () => {
    const result = await toResult(await backend.handler(new Request("http://127.0.0.1:54321/nothing-here")));
    expect(result.status).toBe(404);
    expect(result.body.error).toBe("not_found");
  });

  it.each([
    ["PUT", "users", ["DELETE", "GET", "OPTIONS", "POST"]],
    ["PATCH", "dexcom-tokens", ["DELETE", "GET", "OPTIONS", "POST"]],
    ["DELETE", "health", ["GET", "OPTIONS"]],
  ])("answers %s /%s with 405 method_not_allowed and an Allow header", async (method, fn, allowed) => {
    const token = await backend.token("method-uid");
    const { status, headers, body } = await backend.call(fn, { method, token });
    expect(status).toBe(405);
    expect(body.error).toBe("method_not_allowed");
    expect(headers.get("allow")!.split(/,\s*/).sort()).toEqual(allowed);
  });
});

describe("error envelope", () => {
  it("has exactly error, message and request_id", async () => {
    const { headers, body } = await backend.call("users");
    expect(Object.keys(body).sort()).toEqual(ERROR_KEYS);
    expect(body.message).toEqual(expect.any(String));
    expect(body.message.length).toBeGreaterThan(0);
    expect(body.request_id).toBe(headers.get("x-request-id"));
  });

  it("adds details [{path, message}] to validation_failed", async () => {
    const token = await registeredCaller(backend, "envelope-uid");
    const { status, body } = await backend.call("dexcom-tokens", { method: "POST", token, json: tokenBody({ expires_in: "3600", surplus: 1 }) });
    expect(status).toBe(400);
    expect(body.error).toBe("validation_failed");
    expect(Object.keys(body).sort()).toEqual([...ERROR_KEYS, "details"].sort());
    for (const detail of body.details) expect(Object.keys(detail).sort()).toEqual(["message", "path"]);
    expect(body.details.map((detail: { path: string }) => detail.path).sort()).toEqual(["expires_in", "surplus"]);
  });

  it("is JSON", async () => {
    const { headers } = await backend.call("users");
    expect(headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("a request body that breaks off", () => {
  it("answers 400 invalid_json, not 500, and stores nothing", async () => {
    const token = await registeredCaller(backend, "broken-body-uid");
    const before = await snapshotTables(backend.database.db);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"access_token": "a'));
        controller.error(new Error("connection reset by peer"));
      },
    });
    const response = await backend.handler(new Request(`${BASE_URL}/dexcom-tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit));
    const { status, body: answer } = await toResult(response);
    expect(status).toBe(400);
    expect(answer.error).toBe("invalid_json");
    expect(await snapshotTables(backend.database.db)).toEqual(before);
    expect(backend.logs.join("\n")).not.toMatch(/unhandled_error/);
  });
});

describe("500 internal_error", () => {
  const SECRET = "password=hunter2 at /srv/internal/db.ts:42";

  function failingFunction(thrown: unknown) {
    const lines: string[] = [];
    const handler = createFunction({
      name: "broken",
      routes: { "": { GET: async () => { throw thrown; } } },
      logger: jsonLogger((line) => lines.push(line)),
      allowedOrigins: ["*"],
    });
    const call = async (headers: Record<string, string> = {}) =>
      toResult(await handler(new Request(`${BASE_URL}/broken`, { headers })));
    return { lines, call };
  }

  it("answers the envelope with internal_error and nothing of the error", async () => {
    const { call } = failingFunction(new Error(`boom: ${SECRET}`));
    const { status, body, text } = await call();
    expect(status).toBe(500);
    expect(Object.keys(body).sort()).toEqual(ERROR_KEYS);
    expect(body.error).toBe("internal_error");
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("boom");
    expect(text).not.toContain("/srv/");
    expect(text).not.toMatch(/\bat\s+\S+\s+\(/); // no stack frame
  });

  it("keeps x-request-id and CORS headers on a 500", async () => {
    const { call } = failingFunction(new Error("boom"));
    const { headers, body } = await call({ "x-request-id": "failing-500" });
    expect(headers.get("x-request-id")).toBe("failing-500");
    expect(body.request_id).toBe("failing-500");
    expect(headers.get("access-control-allow-origin")).toBe("*");
  });

  it("logs one error line with the request id, the message and the stack", async () => {
    const { lines, call } = failingFunction(new Error(`boom: ${SECRET}`));
    await call({ "x-request-id": "failing-log" });
    const errors = lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ event: "unhandled_error", request_id: "failing-log", error: "Error" });
    expect(errors[0].message).toContain("boom");
    expect(errors[0].stack).toMatch(/Error: boom[\s\S]*\n\s+at /);
  });

  it("logs the request line with status 500", async () => {
    const { lines, call } = failingFunction(new Error("boom"));
    await call({ "x-request-id": "failing-status" });
    const request = lines.map((line) => JSON.parse(line)).find((entry) => entry.event === "request");
    expect(request).toMatchObject({ function: "broken", status: 500, request_id: "failing-status" });
  });

  it("answers 500 internal_error when something that is not an Error is thrown", async () => {
    const { call } = failingFunction({ secret: SECRET });
    const { status, body, text } = await call();
    expect(status).toBe(500);
    expect(body.error).toBe("internal_error");
    expect(text).not.toContain("hunter2");
  });
});

describe("Google's key set unreachable", () => {
  let cold: TestBackend;
  beforeAll(async () => (cold = await startTestBackend()));
  afterAll(() => cold.close());

  it("answers 503 auth_unavailable with Retry-After, logs why, and changes nothing", async () => {
    cold.jwks.failure = "network_error";
    const before = await snapshotTables(cold.database.db);
    const { status, headers, body } = await cold.call("users", { method: "POST", token: await cold.token("no-keys-uid") });
    expect([status, body.error, headers.get("retry-after")]).toEqual([503, "auth_unavailable", "5"]);
    expect(Object.keys(body).sort()).toEqual([...ERROR_KEYS].sort());
    expect(cold.logs.some((line) => JSON.parse(line).event === "auth_keys_unavailable")).toBe(true);
    expect(await snapshotTables(cold.database.db)).toEqual(before);
  });
});

describe("ALLOWED_ORIGINS", () => {
  let restricted: TestBackend;
  beforeAll(async () => (restricted = await startTestBackend({ ALLOWED_ORIGINS: "https://app.example, https://admin.example" })));
  afterAll(() => restricted.close());

  it("echoes a listed origin", async () => {
    const { headers } = await restricted.call("health", { headers: { origin: "https://admin.example" } });
    expect(headers.get("access-control-allow-origin")).toBe("https://admin.example");
    expect(headers.get("vary")).toMatch(/origin/i);
  });

  it("echoes a listed origin on OPTIONS", async () => {
    const { status, headers } = await restricted.call("users", { method: "OPTIONS", headers: { origin: "https://app.example" } });
    expect(status).toBe(204);
    expect(headers.get("access-control-allow-origin")).toBe("https://app.example");
  });

  it("does not echo an unlisted origin", async () => {
    const { headers } = await restricted.call("health", { headers: { origin: "https://evil.example" } });
    expect(headers.get("access-control-allow-origin")).not.toBe("https://evil.example");
    expect(headers.get("access-control-allow-origin")).not.toBe("*");
  });

  it("answers * by default, whatever the origin", async () => {
    const { headers } = await backend.call("health", { headers: { origin: "https://evil.example" } });
    expect(headers.get("access-control-allow-origin")).toBe("*");
  });
});
