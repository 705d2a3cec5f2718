import { createFunction } from "../http/app.ts";
import type { Logger } from "../http/log.ts";

type Handler = (request: Request) => Promise<Response>;

/**
 * Routes `/functions/v1/<name>/...` to the function of that name, as Supabase's gateway does; a
 * function sees the path from its own name on.
 */
export function createGateway(
  functions: Record<string, Handler>,
  options: { logger: Logger; allowedOrigins: readonly string[] },
): Handler {
  // Unknown functions get the usual 404 envelope (and OPTIONS its 204) from a function with no routes.
  const unknown = createFunction({ name: "functions", routes: {}, ...options });
  return (request) => {
    const match = /^\/functions\/v1\/([^/]+)/.exec(new URL(request.url).pathname);
    const handler = match ? functions[match[1]!] : undefined;
    return (handler ?? unknown)(request);
  };
}
