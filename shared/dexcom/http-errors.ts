// What a Dexcom failure means to the app: the contract's status and error code.
import { HttpError, internalError } from "../http/errors.ts";
import { DexcomBudgetSpent } from "./call-budget.ts";
import { DexcomOAuthError, DexcomRateLimited, DexcomUnauthorized, DexcomUnavailable } from "./client.ts";
import { DexcomNotConnected, DexcomReauthorizationRequired, DexcomTokenUnreadable } from "./token-service.ts";

export const notConfigured = () =>
  new HttpError(503, "not_configured", "The Dexcom connection is not configured on this server.");

/** The HttpError for a Dexcom-related failure, or the error itself when it is none of them. */
export function dexcomHttpError(error: unknown): unknown {
  if (error instanceof DexcomNotConnected) {
    return new HttpError(409, "dexcom_not_connected", "No Dexcom account is connected; connect one first.");
  }
  if (error instanceof DexcomReauthorizationRequired) {
    return new HttpError(409, "dexcom_reauthorization_required", "Dexcom no longer accepts this connection; connect your Dexcom account again.");
  }
  if (error instanceof DexcomBudgetSpent) {
    return new HttpError(429, "rate_limited", "This server's hourly budget of Dexcom calls is spent; please try again later.", {
      headers: { "retry-after": String(error.retryAfterSeconds) },
    });
  }
  if (error instanceof DexcomRateLimited) {
    // Dexcom does not document Retry-After; without one, a minute.
    const seconds = error.retryAfterSeconds ?? 60;
    return new HttpError(429, "rate_limited", "Dexcom's rate limit was reached; please try again later.", {
      headers: { "retry-after": String(seconds) },
    });
  }
  if (error instanceof DexcomUnavailable || error instanceof DexcomOAuthError || error instanceof DexcomUnauthorized) {
    return new HttpError(502, "dexcom_unavailable", "Dexcom is not answering as expected; please try again shortly.");
  }
  if (error instanceof DexcomTokenUnreadable) return internalError();
  return error;
}
