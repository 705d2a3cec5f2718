import { type FirebaseUser, type FirebaseVerifier, KeySetUnavailable, TokenRejected } from "../auth/firebase-verifier.ts";
import { HttpError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { RequestContext } from "./app.ts";

const BEARER = /^Bearer +([^\s]+) *$/i;

/** The credential of an `Authorization: Bearer <credential>` header (scheme in any case), or null. */
export function bearerCredential(header: string | null): string | null {
  return header === null ? null : BEARER.exec(header)?.[1] ?? null;
}

/** The Firebase user behind `Authorization: Bearer <ID token>`, or a 401 with the contract's code. */
export async function authenticate(
  context: RequestContext,
  verifier: FirebaseVerifier,
  logger: Logger,
): Promise<FirebaseUser> {
  const header = context.request.headers.get("authorization");
  if (header === null || header.trim() === "") {
    throw unauthorized("missing_token", "Sign in: the Authorization header with a Firebase ID token is missing.");
  }
  const credential = bearerCredential(header);
  if (credential === null) {
    logger.warn("auth_failed", { request_id: context.requestId, reason: "not_a_bearer_token" });
    throw unauthorized("invalid_token", "The Authorization header must be `Bearer <Firebase ID token>`.");
  }
  try {
    const user = await verifier.verify(credential);
    context.setUser(user.uid);
    return user;
  } catch (error) {
    if (error instanceof KeySetUnavailable) {
      logger.warn("auth_keys_unavailable", { request_id: context.requestId });
      throw new HttpError(503, "auth_unavailable", "Sign-in cannot be checked right now; please try again shortly.", {
        headers: { "retry-after": "5" },
      });
    }
    if (!(error instanceof TokenRejected)) throw error;
    // The reason is logged so that failed sign-ins can be monitored; the token never is.
    logger.warn("auth_failed", { request_id: context.requestId, reason: error.reason });
    throw error.code === "token_expired"
      ? unauthorized("token_expired", "The Firebase ID token has expired; get a fresh one and retry.")
      : unauthorized("invalid_token", "The Firebase ID token is not valid.");
  }
}

function unauthorized(code: string, message: string): HttpError {
  return new HttpError(401, code, message, { headers: { "www-authenticate": `Bearer error="invalid_token"` } });
}
