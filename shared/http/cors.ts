import { corsHeaders as supabaseCors } from "@supabase/supabase-js/cors";

// Every header Supabase's client libraries send, from the SDK itself (so a header a new SDK adds is
// allowed as soon as the dependency is updated), plus our request id and the tracing and routing
// headers of browsers' and Supabase's tooling.
const ALLOWED_HEADERS = [
  ...(supabaseCors["Access-Control-Allow-Headers"] ?? "").split(",").map((name) => name.trim()).filter(Boolean),
  "x-request-id",
  "x-region",
  "traceparent",
  "tracestate",
  "baggage",
].join(", ");

/**
 * CORS headers for one response. With `*` every origin may call us (the app authenticates with a
 * bearer token, not cookies); otherwise a listed origin is echoed back, and any other origin gets
 * the first listed one, which its browser then refuses.
 */
export function corsHeaders(allowedOrigins: readonly string[], origin: string | null, methods: string): Record<string, string> {
  const headers: Record<string, string> = {
    "access-control-allow-headers": ALLOWED_HEADERS,
    "access-control-allow-methods": methods,
    "access-control-expose-headers": "x-request-id, retry-after",
    "access-control-max-age": "600",
  };
  if (allowedOrigins.includes("*")) {
    headers["access-control-allow-origin"] = "*";
  } else {
    headers["access-control-allow-origin"] = origin !== null && allowedOrigins.includes(origin)
      ? origin
      : allowedOrigins[0] ?? "null";
    headers["vary"] = "Origin";
  }
  return headers;
}
