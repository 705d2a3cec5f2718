// Google's public keys for Firebase ID tokens, fetched once and kept as imported CryptoKeys so a
// request never re-imports a key. Google rotates its keys every few days and publishes a new one
// before signing with it, so the key set is refetched when its Cache-Control max-age runs out, or
// when a token names a kid we do not know, but never more than once per cooldown: a flood of tokens
// with made-up kids costs at most one fetch a minute.
import { importJWK } from "jose";
import type { JWK } from "jose";

// Used when the response has no usable Cache-Control max-age.
const DEFAULT_MAX_AGE_MS = 3_600_000;
// Least time between two fetches, unless no key set has ever been fetched.
const REFETCH_COOLDOWN_MS = 60_000;
const DEFAULT_FETCH_TIMEOUT_MS = 5000;

// Distinct from a rejected token: the caller cannot be judged at all, so the HTTP layer answers 503.
export class KeySetUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeySetUnavailable";
  }
}

export interface JwksCacheOptions {
  url: string;
  fetch?: typeof fetch | undefined;
  /** Milliseconds since the epoch. */
  now?: (() => number) | undefined;
  fetchTimeoutMs?: number | undefined;
}

export interface JwksCache {
  /**
   * The key for `kid`, or undefined when the key set does not have it. Throws KeySetUnavailable
   * only when no key set could ever be fetched; once one was, it keeps serving while refetches fail.
   */
  getKey(kid: string): Promise<CryptoKey | undefined>;
}

interface KeySet {
  keys: ReadonlyMap<string, CryptoKey>;
  expiresAt: number;
}

export function createJwksCache(options: JwksCacheOptions): JwksCache {
  // Looked up on each call rather than captured, so a fetch patched after start-up (msw) is used.
  const fetchKeySet = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;
  const timeoutMs = options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;

  let current: KeySet | null = null;
  let lastAttemptAt = -Infinity;
  let inFlight: Promise<KeySet> | null = null;

  // Concurrent callers share one fetch; the attempt time is taken when it starts, so failed
  // attempts count toward the cooldown too and a failing endpoint is not hammered either.
  function refresh(): Promise<KeySet> {
    if (inFlight) return inFlight;
    lastAttemptAt = now();
    inFlight = download()
      .then((keySet) => (current = keySet))
      .finally(() => (inFlight = null));
    return inFlight;
  }

  async function download(): Promise<KeySet> {
    let response: Response;
    try {
      response = await fetchKeySet(options.url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new KeySetUnavailable(`cannot fetch the Firebase key set: ${describe(error)}`, { cause: error });
    }
    if (response.status !== 200) {
      void response.body?.cancel().catch(() => {});
      throw new KeySetUnavailable(`cannot fetch the Firebase key set: HTTP ${response.status}`);
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw new KeySetUnavailable("cannot fetch the Firebase key set: the response is not JSON", { cause: error });
    }
    const keys = await importKeys(body);
    return { keys, expiresAt: now() + freshnessMs(response.headers) };
  }

  // Joins a fetch under way, or starts one when the cooldown allows. Stale-if-error: a refetch
  // that fails leaves the keys we have in place, and the next attempt waits for the cooldown.
  async function refreshIfAllowed(): Promise<void> {
    if (inFlight === null && now() - lastAttemptAt < REFETCH_COOLDOWN_MS) return;
    try {
      await refresh();
    } catch (error) {
      if (!(error instanceof KeySetUnavailable)) throw error;
    }
  }

  return {
    async getKey(kid) {
      if (current === null) await refresh();
      else if (now() >= current.expiresAt) await refreshIfAllowed();

      const known = current?.keys.get(kid);
      if (known !== undefined) return known;
      await refreshIfAllowed();
      return current?.keys.get(kid);
    },
  };
}

// Keys that are not RS256 signing keys with a kid are left out rather than failing the whole set.
async function importKeys(body: unknown): Promise<Map<string, CryptoKey>> {
  const entries = isObject(body) ? body["keys"] : undefined;
  if (!Array.isArray(entries)) throw new KeySetUnavailable("the Firebase key set has no \"keys\" array");

  const keys = new Map<string, CryptoKey>();
  for (const entry of entries) {
    if (!isObject(entry)) continue;
    const { kid, kty, alg, use } = entry;
    if (typeof kid !== "string" || kid === "" || kty !== "RSA") continue;
    if ((alg !== undefined && alg !== "RS256") || (use !== undefined && use !== "sig")) continue;
    try {
      const key = await importJWK(entry as JWK, "RS256");
      if (!(key instanceof Uint8Array)) keys.set(kid, key);
    } catch {
      continue;
    }
  }
  return keys;
}

// The response's remaining freshness: max-age less the Age a cache in between has already used up.
function freshnessMs(headers: Headers): number {
  const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?:,|$)/i.exec(headers.get("cache-control") ?? "")?.[1];
  if (maxAge === undefined) return DEFAULT_MAX_AGE_MS;
  const age = Number(/^\s*(\d+)\s*$/.exec(headers.get("age") ?? "")?.[1] ?? 0);
  return Math.max(0, Number(maxAge) - age) * 1000;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(error: unknown): string {
  if (error instanceof Error && error.name === "TimeoutError") return `no answer within the timeout`;
  return error instanceof Error ? error.message : String(error);
}
