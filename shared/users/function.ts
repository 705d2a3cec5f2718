import type { FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { Database } from "../db/database.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { authenticate } from "../http/auth.ts";
import { readJsonBody } from "../http/body.ts";
import { userInactive, userNotFound } from "../http/caller-errors.ts";
import { HttpError, jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";
import { validate, validationFailed } from "../http/validation.ts";
import { registerUserRequest } from "../api/schemas.ts";
import { deleteUser, findUser, registerUser } from "./store.ts";

export interface UsersDependencies {
  db: Database;
  verifier: FirebaseVerifier;
  logger: Logger;
  allowedOrigins: readonly string[];
}

// users.email is VARCHAR(255); the limit applies to the email as stored (its key, which can be
// longer than the token's spelling: İ becomes two characters), so the database checks it.
const MAX_EMAIL_LENGTH = 255;

export function usersFunction(deps: UsersDependencies): (request: Request) => Promise<Response> {
  const caller = (context: RequestContext) => authenticate(context, deps.verifier, deps.logger);

  async function register(context: RequestContext): Promise<Response> {
    const user = await caller(context);
    validate(registerUserRequest, await readJsonBody(context.request));
    // The email goes to the database as the token has it: dms.email_key there is the one rule
    // that both stores it and compares it (see registerUser).
    const { outcome, user: row } = await registerUser(deps.db, {
      uid: user.uid,
      email: user.email,
      emailVerified: user.emailVerified,
    });
    if (outcome === "email_too_long") {
      throw validationFailed([{ path: "email", message: `the token's email is longer than ${MAX_EMAIL_LENGTH} characters` }]);
    }
    if (outcome === "user_inactive") throw userInactive();
    if (outcome === "email_in_use") {
      throw new HttpError(409, "email_in_use", "This email address belongs to another account.");
    }
    return jsonResponse(outcome === "created" ? 201 : 200, { user: row });
  }

  async function get(context: RequestContext): Promise<Response> {
    const user = await findUser(deps.db, (await caller(context)).uid);
    if (user === null) throw userNotFound();
    if (!user.is_active) throw userInactive();
    return jsonResponse(200, { user });
  }

  async function remove(context: RequestContext): Promise<Response> {
    if (!(await deleteUser(deps.db, (await caller(context)).uid, context.requestId))) throw userNotFound();
    return new Response(null, { status: 204 });
  }

  return createFunction({
    name: "users",
    routes: { "": { POST: register, GET: get, DELETE: remove } },
    logger: deps.logger,
    allowedOrigins: deps.allowedOrigins,
  });
}
