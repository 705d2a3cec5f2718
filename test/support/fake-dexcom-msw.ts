// The fake Dexcom (fake-dexcom.ts) as msw handlers, for tests that intercept fetch in-process. Kept
// apart so fake-dexcom.ts imports nothing from msw: under Deno, loading msw opens a BroadcastChannel
// that keeps the process alive, and the Deno benches serve the fake over real HTTP instead.
import { http } from "msw";
import type { RequestHandler } from "msw";
import type { FakeDexcom } from "./fake-dexcom.ts";

/** Answers every request below baseUrl (Dexcom's API host) from `dexcom`. */
export function fakeDexcomHandlers(dexcom: FakeDexcom, baseUrl: string): RequestHandler[] {
  const base = baseUrl.replace(/\/+$/, "");
  return [http.all(`${base}/*`, ({ request }) => dexcom.handle(request))];
}
