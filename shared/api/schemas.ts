// The shapes of the HTTP API, shared by the handlers (which validate requests with them) and the
// typed client (which validates responses with them), so the two cannot drift apart.
import { z } from "zod";

const text = (max: number) => z.string().min(1).max(max);

export const storeTokenRequest = z.strictObject({
  access_token: text(4096),
  refresh_token: text(4096),
  expires_in: z.int().min(1).max(31_536_000),
  token_type: text(50).default("Bearer"),
  scope: text(255).default("offline_access"),
  dexcom_user_id: text(255).optional(),
});
export type StoreTokenRequest = z.input<typeof storeTokenRequest>;

/** POST /users takes no body or any JSON object, whose content is ignored. */
export const registerUserRequest = z.record(z.string(), z.unknown()).optional();

export const user = z.object({
  id: z.int(),
  firebase_uid: z.string().nullable(),
  email: z.string().nullable(),
  dexcom_user_id: z.string().nullable(),
  is_active: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type User = z.infer<typeof user>;
export const userResponse = z.object({ user });

export const token = z.object({
  id: z.int(),
  token_type: z.string().nullable(),
  scope: z.string().nullable(),
  expires_at: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type Token = z.infer<typeof token>;
export const storeTokenResponse = z.object({ token });
export const tokenStatusResponse = z.object({ connected: z.boolean(), token: token.nullable() });
export type TokenStatus = z.infer<typeof tokenStatusResponse>;
export const revokeTokensResponse = z.object({ revoked: z.int() });

/** POST /dexcom-oauth/start: where to send the browser, and the state it carries (10 minutes, once). */
export const oauthStartResponse = z.object({ authorize_url: z.string(), state: z.string(), expires_at: z.string() });
export type OAuthStart = z.infer<typeof oauthStartResponse>;

/**
 * GET /dexcom-egvs: Dexcom's `/v3/users/self/egvs` body as it sent it. Only its frame is checked:
 * records keep every field Dexcom sends, known or not (values, status and trend may be null).
 */
export const egvsResponse = z.looseObject({
  recordType: z.string().optional(),
  userId: z.string().optional(),
  records: z.array(z.looseObject({ recordId: z.string(), systemTime: z.string(), displayTime: z.string() })),
});
export type EgvsResponse = z.infer<typeof egvsResponse>;

export const healthResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  database: z.enum(["ok", "unreachable"]),
  schema_version: z.string().nullable(),
});
export type Health = z.infer<typeof healthResponse>;

export const errorBody = z.object({
  error: z.string(),
  message: z.string(),
  request_id: z.string(),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof errorBody>;
