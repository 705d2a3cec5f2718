import { HttpError } from "./errors.ts";

// The answers every endpoint gives about the caller's own row.
export const userNotFound = () =>
  new HttpError(404, "user_not_found", "No user is registered for this sign-in; call POST /users first.");
export const userInactive = () => new HttpError(403, "user_inactive", "This account is deactivated.");
