// A web app on another origin calls the functions through supabase-js in a real browser (Debian's
// headless Chromium driven by playwright-core), so the browser's own CORS checks decide: a header
// the client sends that the preflight does not allow makes the call fail before it is sent.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateKey } from "../shared/crypto/fernet.ts";
import { migratedPostgres, type TestDatabase } from "./support/databases.ts";
import { createTestKeys, type TestKeys } from "./support/firebase-tokens.ts";
import { serveJwks } from "./support/jwks-http-server.ts";
import { type ServeProcess, startServe } from "./support/serve-process.ts";

// Debian's package (`apt-get install -y chromium`, which .ci/run does), not a browser download.
const CHROMIUM = "/usr/bin/chromium";
const PAGE = new URL("./fixtures/browser/index.html", import.meta.url);
const SUPABASE_UMD = createRequire(import.meta.url).resolve("@supabase/supabase-js/dist/umd/supabase.js");

/** What the page's `invoke` gives back; status is null when no answer reached the page. */
interface Outcome {
  status: number | null;
  data: { user?: { firebase_uid: string; email: string | null } } | null;
  error: string | null;
  requestId: string | null;
}

interface PageServer {
  origin: string;
  close(): Promise<void>;
}

/** The app's own origin: the page at `/` and supabase-js's UMD build at `/supabase.js`. */
async function servePage(): Promise<PageServer> {
  const files: Record<string, { type: string; body: Buffer }> = {
    "/": { type: "text/html; charset=utf-8", body: await readFile(PAGE) },
    "/supabase.js": { type: "text/javascript; charset=utf-8", body: await readFile(SUPABASE_UMD) },
  };
  const server: Server = createServer((request, response) => {
    const file = files[new URL(request.url ?? "/", "http://page").pathname];
    response.writeHead(file ? 200 : 404, { "content-type": file?.type ?? "text/plain" });
    response.end(file?.body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

if (!existsSync(CHROMIUM)) {
  describe("supabase-js in a browser on another origin", () => {
    it.skip(`needs Debian's chromium at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`, () => {});
  });
}

describe.runIf(existsSync(CHROMIUM))("supabase-js in headless Chromium on another origin", () => {
  let database: TestDatabase;
  let keys: TestKeys;
  let jwks: { url: string; close(): Promise<void> };
  let pageServer: PageServer;
  let server: ServeProcess;
  let browser: Browser;
  let page: Page;
  // The browser explains a CORS refusal only on its console; kept for the failure messages.
  const consoleLines: string[] = [];

  beforeAll(async () => {
    database = await migratedPostgres();
    keys = await createTestKeys();
    jwks = await serveJwks(keys.jwks);
    pageServer = await servePage();
    server = await startServe({
      DATABASE_URL: database.url,
      FIREBASE_PROJECT_ID: keys.projectId,
      FIREBASE_JWKS_URL: jwks.url,
      ENCRYPTION_KEY: generateKey(),
      // A deployment names its app's origin; this also makes the server echo it, not `*`.
      ALLOWED_ORIGINS: pageServer.origin,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage();
    page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    await page.goto(`${pageServer.origin}/`);
  }, 60_000);

  beforeEach(() => {
    consoleLines.length = 0;
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await pageServer?.close();
    await jwks?.close();
    await database?.drop();
  });

  /** `supabase.functions.invoke(name, options)` run by the page itself. */
  function invoke(name: string, options: Record<string, unknown>): Promise<Outcome> {
    return page.evaluate(
      ([baseUrl, name, options]) => (window as unknown as { invoke: (...args: unknown[]) => Promise<Outcome> }).invoke(baseUrl, name, options),
      [server.baseUrl, name, options] as const,
    );
  }

  async function bearer(uid: string): Promise<Record<string, string>> {
    return { Authorization: `Bearer ${await keys.idToken({ sub: uid, email: `${uid}@example.com` })}` };
  }

  it("is served from an origin other than the functions'", () => {
    expect(new URL(page.url()).origin).toBe(pageServer.origin);
    expect(pageServer.origin).not.toBe(new URL(server.baseUrl).origin);
  });

  it("registers the caller with a function region chosen (supabase-js sends x-region)", async () => {
    const outcome = await invoke("users", { method: "POST", headers: await bearer("browser-region"), region: "us-east-1" });
    expect(outcome, consoleLines.join("\n")).toMatchObject({
      status: 201,
      error: null,
      data: { user: { firebase_uid: "browser-region", email: "browser-region@example.com" } },
    });
  });

  it("sends trace headers and reads the x-request-id it sent back", async () => {
    const headers = {
      ...(await bearer("browser-trace")),
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      tracestate: "vendor=opaque",
      baggage: "userId=browser-trace",
      "x-request-id": "browser-trace-1",
    };
    const outcome = await invoke("users", { method: "POST", headers });
    expect(outcome, consoleLines.join("\n")).toMatchObject({
      status: 201,
      error: null,
      requestId: "browser-trace-1",
      data: { user: { firebase_uid: "browser-trace" } },
    });
  });

  it("sends x-retry-count, as the SDK does on a retried request", async () => {
    const headers = { ...(await bearer("browser-retry")), "x-retry-count": "1" };
    const outcome = await invoke("users", { method: "POST", headers });
    expect(outcome, consoleLines.join("\n")).toMatchObject({
      status: 201,
      error: null,
      data: { user: { firebase_uid: "browser-retry" } },
    });
  });
});
