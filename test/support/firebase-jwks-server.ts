// An msw handler standing in for Google's Firebase key set endpoint. Its fields can be changed
// mid-test (rotate the keys, make it fail), and it counts requests so a test can tell how many
// fetches the verifier made.
import { http, HttpResponse } from "msw";
import type { HttpHandler } from "msw";
import type { JSONWebKeySet } from "jose";
import { GOOGLE_JWKS_URL } from "../../shared/auth/firebase-verifier.ts";

export { GOOGLE_JWKS_URL };

/** What Google actually sends. */
const GOOGLE_CACHE_CONTROL = "public, max-age=19045, must-revalidate, no-transform";

/** `network_error`: the fetch itself fails; `bad_json`: 200 with a body that is not JSON. */
export type JwksFailure = "network_error" | "bad_json";

export interface JwksHandlerOptions {
  /** Default GOOGLE_JWKS_URL. */
  url?: string;
  /** null sends no Cache-Control at all. Default GOOGLE_CACHE_CONTROL. */
  cacheControl?: string | null;
  /** Default 200; anything else answers with an error body. */
  status?: number;
  failure?: JwksFailure | null;
}

export class JwksEndpoint {
  readonly url: string;
  readonly handler: HttpHandler;
  /** Requests answered so far, failed ones included. */
  requests = 0;
  jwks: JSONWebKeySet;
  cacheControl: string | null;
  status: number;
  failure: JwksFailure | null;

  constructor(jwks: JSONWebKeySet, options: JwksHandlerOptions = {}) {
    this.jwks = jwks;
    this.url = options.url ?? GOOGLE_JWKS_URL;
    this.cacheControl = options.cacheControl === undefined ? GOOGLE_CACHE_CONTROL : options.cacheControl;
    this.status = options.status ?? 200;
    this.failure = options.failure ?? null;
    this.handler = http.get(this.url, () => this.#respond());
  }

  #respond(): Response {
    this.requests += 1;
    if (this.failure === "network_error") return HttpResponse.error();
    const headers = new Headers({ "content-type": "application/json; charset=UTF-8" });
    if (this.cacheControl !== null) headers.set("cache-control", this.cacheControl);
    if (this.failure === "bad_json") return new HttpResponse("<html>not json</html>", { status: 200, headers });
    if (this.status !== 200) return HttpResponse.json({ error: "unavailable" }, { status: this.status, headers });
    return HttpResponse.json(this.jwks, { headers });
  }
}

export function jwksHandler(jwks: JSONWebKeySet, options?: JwksHandlerOptions): JwksEndpoint {
  return new JwksEndpoint(jwks, options);
}
