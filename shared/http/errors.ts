// The contract's error envelope: {"error", "message", "request_id"} (+ "details" for validation).
export interface ErrorDetail {
  path: string;
  message: string;
}

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: { details?: ErrorDetail[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(error: HttpError, requestId: string): Response {
  const body: Record<string, unknown> = { error: error.code, message: error.message, request_id: requestId };
  if (error.extra.details) body.details = error.extra.details;
  return jsonResponse(error.status, body, error.extra.headers);
}

export const internalError = () =>
  new HttpError(500, "internal_error", "Something went wrong on our side; please try again later.");
export const databaseUnavailable = () =>
  new HttpError(503, "database_unavailable", "The database is unavailable; please try again shortly.", {
    headers: { "retry-after": "5" },
  });
