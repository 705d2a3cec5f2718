import { isDatabaseUnavailable } from "../db/unavailable.ts";
import { corsHeaders } from "./cors.ts";
import { databaseUnavailable, errorResponse, HttpError, internalError } from "./errors.ts";
import { describeError, type Logger } from "./log.ts";
import { requestIdFor } from "./request-id.ts";

export type Method = "GET" | "POST" | "DELETE";

export interface RequestContext {
  request: Request;
  requestId: string;
  /** Names the caller in this request's log line. */
  setUser(uid: string): void;
}

export type RouteHandler = (context: RequestContext) => Promise<Response>;

/** Handlers by path inside the function ("" is the function's root) and method. */
export type Routes = Record<string, Partial<Record<Method, RouteHandler>>>;

export interface FunctionOptions {
  name: string;
  routes: Routes;
  logger: Logger;
  allowedOrigins: readonly string[];
}

/**
 * One edge function as a web-standard handler: routing inside the function, CORS and OPTIONS,
 * x-request-id, the error envelope, 503 for an unreachable database, and one log line a request.
 */
export function createFunction(options: FunctionOptions): (request: Request) => Promise<Response> {
  const { name, routes, logger, allowedOrigins } = options;
  // Allow and CORS name each path's methods: worked out once, not on every request.
  const allowed = new Map(Object.values(routes).map((route) => [route, [...Object.keys(route), "OPTIONS"].join(", ")]));
  return async (request) => {
    const started = performance.now();
    const requestId = requestIdFor(request);
    const url = new URL(request.url);
    const path = pathInside(name, url.pathname);
    const route = path === null ? undefined : routes[path];
    const methods = route ? allowed.get(route)! : "GET, POST, DELETE, OPTIONS";
    let user: string | undefined;

    let response: Response;
    try {
      response = await dispatch(request, route, methods, { request, requestId, setUser: (uid) => (user = uid) });
    } catch (error) {
      response = errorResponse(asHttpError(error, logger, requestId), requestId);
    }

    // Every response here is one we built, so its headers can be set in place.
    const headers = response.headers;
    for (const [key, value] of Object.entries(corsHeaders(allowedOrigins, request.headers.get("origin"), methods))) {
      headers.set(key, value);
    }
    headers.set("x-request-id", requestId);
    logger.info("request", {
      function: name,
      method: request.method,
      path: url.pathname,
      status: response.status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      request_id: requestId,
      ...(user === undefined ? {} : { user_id: user }),
    });
    return response;
  };
}

async function dispatch(
  request: Request,
  route: Partial<Record<Method, RouteHandler>> | undefined,
  allow: string,
  context: RequestContext,
): Promise<Response> {
  if (request.method === "OPTIONS") return new Response(null, { status: 204 });
  if (route === undefined) throw new HttpError(404, "not_found", "There is nothing at this path.");
  const handler = route[request.method as Method];
  if (handler === undefined) {
    throw new HttpError(405, "method_not_allowed", `Use ${allow} here.`, { headers: { allow } });
  }
  return await handler(context);
}

// Supabase hands a function the path from its own name on: /users, /dexcom-oauth/start, ...
function pathInside(name: string, pathname: string): string | null {
  const segments = pathname.split("/").filter((segment) => segment !== "");
  const at = segments.indexOf(name);
  if (at === -1) return null;
  const rest = segments.slice(at + 1);
  return rest.length === 0 ? "" : `/${rest.join("/")}`;
}

function asHttpError(error: unknown, logger: Logger, requestId: string): HttpError {
  if (error instanceof HttpError) return error;
  if (isDatabaseUnavailable(error)) {
    logger.warn("database_unavailable", { request_id: requestId, code: (error as { code?: unknown }).code });
    return databaseUnavailable();
  }
  logger.error("unhandled_error", { request_id: requestId, ...describeError(error) });
  return internalError();
}
