import { z } from "zod";
import { GOOGLE_JWKS_URL } from "../auth/firebase-verifier.ts";
import { KeyRingConfigError, loadKeyRing, type KeyRing } from "../crypto/key-ring.ts";
import { DatabaseConfigError, databaseTarget, type DatabaseTarget } from "../db/open.ts";

/** Every problem with the environment, one line each, naming the variable and never its value. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

export interface Needs {
  /** Firebase sign-in: FIREBASE_PROJECT_ID. */
  firebase?: boolean;
  /** Token encryption: ENCRYPTION_KEY (and PREVIOUS_ENCRYPTION_KEYS). */
  encryption?: boolean;
  /** A Postgres server (deployed functions); otherwise the embedded database is allowed. */
  server?: boolean;
}

export interface Config {
  database: DatabaseTarget;
  databasePoolSize: number;
  firebase: { projectId: string; jwksUrl: string; emulatorHost: string | null } | null;
  keyRing: KeyRing | null;
  allowedOrigins: string[];
  port: number;
  /** The Dexcom developer app; null when its variables are unset (the Dexcom endpoints answer 503). */
  dexcom: DexcomConfig | null;
}

export interface DexcomConfig {
  clientId: string;
  clientSecret: string;
  /** The redirect URI registered with Dexcom: `<SUPABASE_URL>/functions/v1/dexcom-oauth/callback`. */
  redirectUri: string;
  /** https://api.dexcom.com, https://sandbox-api.dexcom.com, https://api.dexcom.eu, https://api.dexcom.jp. */
  apiBaseUrl: string;
  /** Where the OAuth callback sends the browser; null: the OAuth endpoints answer 503 not_configured. */
  appRedirectUrl: string | null;
  /** The bearer secret of POST /dexcom-sync/due; null: that endpoint answers 503 not_configured. */
  syncSecret: string | null;
  /** The most calls to Dexcom all processes together make in any hour. */
  callsPerHour: number;
  /** How often the scheduler syncs a connected user. */
  syncIntervalMinutes: number;
  /** How far back the first sync reaches. */
  backfillDays: number;
}

// An empty variable (as env files often leave them) counts as unset.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (typeof value === "string" && value.trim() === "" ? undefined : value), schema);

// Plain decimal digits only: Number() would also take "0x10", "1e3" or " 8 0".
const integer = (min: number, max: number, error: string) =>
  z.string().trim().regex(/^\d{1,9}$/, error).transform(Number).pipe(z.number().min(min, error).max(max, error));

const portOr = (fallback: number) => optional(integer(1, 65_535, "is not a port number").default(fallback));
const port = portOr(54_321);
// The port `supabase start` gives its database, so tools configured for it work on ours.
const dbPort = portOr(54_322);

/** PORT, or null when it is set to something that is not a port number. */
export function portFrom(env: Record<string, string | undefined>): number | null {
  const parsed = port.safeParse(env.PORT);
  return parsed.success ? parsed.data : null;
}

/** DMS_DB_PORT (where `npm start` serves the embedded database), or null when it is not a port number. */
export function dbPortFrom(env: Record<string, string | undefined>): number | null {
  const parsed = dbPort.safeParse(env.DMS_DB_PORT);
  return parsed.success ? parsed.data : null;
}

const environment = z.object({
  FIREBASE_PROJECT_ID: optional(z.string().trim().regex(/^[A-Za-z0-9._-]{1,128}$/, "is not a Firebase project id").optional()),
  FIREBASE_JWKS_URL: optional(z.url({ protocol: /^https?$/, error: "is not an http(s) URL" }).default(GOOGLE_JWKS_URL)),
  FIREBASE_AUTH_EMULATOR_HOST: optional(z.string().trim().optional()),
  ALLOWED_ORIGINS: optional(z.string().default("*")),
  PORT: port,
  DATABASE_POOL_SIZE: optional(integer(1, 100, "is not a number from 1 to 100").default(10)),
  DEXCOM_CLIENT_ID: optional(z.string().trim().min(1).max(512, "is too long").optional()),
  DEXCOM_CLIENT_SECRET: optional(z.string().trim().min(1).max(512, "is too long").optional()),
  DEXCOM_REDIRECT_URI: optional(z.url({ protocol: /^https?$/, error: "is not an http(s) URL" }).optional()),
  DEXCOM_API_BASE_URL: optional(
    z.url({ protocol: /^https?$/, error: "is not an http(s) URL" })
      .refine((url) => !/[?#]/.test(url), "must be a base URL without query or fragment")
      .transform((url) => url.replace(/\/+$/, ""))
      .default("https://api.dexcom.com"),
  ),
  DEXCOM_APP_REDIRECT_URL: optional(z.url({ error: "is not a URL" }).optional()),
  DEXCOM_SYNC_SECRET: optional(z.string().trim().min(16, "must be at least 16 characters").max(1024, "is too long").optional()),
  DEXCOM_CALLS_PER_HOUR: optional(integer(1, 1_000_000, "is not a number from 1 to 1000000").default(50_000)),
  DEXCOM_SYNC_INTERVAL_MINUTES: optional(integer(1, 1_440, "is not a number of minutes from 1 to 1440").default(60)),
  DEXCOM_BACKFILL_DAYS: optional(integer(1, 365, "is not a number of days from 1 to 365").default(90)),
});

// The Dexcom app is configured by all three of its variables or by none; one or two of them is a
// mistake worth stopping for.
const DEXCOM_APP = ["DEXCOM_CLIENT_ID", "DEXCOM_CLIENT_SECRET", "DEXCOM_REDIRECT_URI"] as const;

export async function loadConfig(env: Record<string, string | undefined>, needs: Needs): Promise<Config> {
  const problems: string[] = [];
  const parsed = environment.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join(".")} ${issue.message}`);
  }
  const values = parsed.data;

  let database: DatabaseTarget | undefined;
  try {
    database = databaseTarget(env);
    if (needs.server && database.kind !== "postgres") problems.push("DATABASE_URL (or SUPABASE_DB_URL) is not set");
  } catch (error) {
    if (!(error instanceof DatabaseConfigError)) throw error;
    problems.push(error.message);
  }

  if (needs.firebase && !env.FIREBASE_PROJECT_ID?.trim()) problems.push("FIREBASE_PROJECT_ID is not set");

  const dexcomSet = DEXCOM_APP.filter((name) => env[name]?.trim());
  if (dexcomSet.length > 0 && dexcomSet.length < DEXCOM_APP.length) {
    for (const name of DEXCOM_APP) {
      if (!dexcomSet.includes(name)) problems.push(`${name} is not set (the other DEXCOM_* variables of the Dexcom app are)`);
    }
  }

  let keyRing: KeyRing | null = null;
  if (needs.encryption) {
    try {
      keyRing = await loadKeyRing(env);
    } catch (error) {
      if (!(error instanceof KeyRingConfigError)) throw error;
      problems.push(error.message);
    }
  }

  if (problems.length > 0 || !values || !database) throw new ConfigError(problems);
  return {
    database,
    databasePoolSize: values.DATABASE_POOL_SIZE,
    firebase: needs.firebase
      ? {
        projectId: values.FIREBASE_PROJECT_ID!,
        jwksUrl: values.FIREBASE_JWKS_URL,
        emulatorHost: values.FIREBASE_AUTH_EMULATOR_HOST ?? null,
      }
      : null,
    keyRing,
    allowedOrigins: values.ALLOWED_ORIGINS.split(",").map((origin) => origin.trim()).filter(Boolean),
    port: values.PORT,
    dexcom: dexcomSet.length === DEXCOM_APP.length
      ? {
        clientId: values.DEXCOM_CLIENT_ID!,
        clientSecret: values.DEXCOM_CLIENT_SECRET!,
        redirectUri: values.DEXCOM_REDIRECT_URI!,
        apiBaseUrl: values.DEXCOM_API_BASE_URL,
        appRedirectUrl: values.DEXCOM_APP_REDIRECT_URL ?? null,
        syncSecret: values.DEXCOM_SYNC_SECRET ?? null,
        callsPerHour: values.DEXCOM_CALLS_PER_HOUR,
        syncIntervalMinutes: values.DEXCOM_SYNC_INTERVAL_MINUTES,
        backfillDays: values.DEXCOM_BACKFILL_DAYS,
      }
      : null,
  };
}
