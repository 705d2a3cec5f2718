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
}

// An empty variable (as env files often leave them) counts as unset.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (typeof value === "string" && value.trim() === "" ? undefined : value), schema);

// Plain decimal digits only: Number() would also take "0x10", "1e3" or " 8 0".
const integer = (min: number, max: number, error: string) =>
  z.string().trim().regex(/^\d{1,9}$/, error).transform(Number).pipe(z.number().min(min, error).max(max, error));

const port = optional(integer(1, 65_535, "is not a port number").default(54_321));

/** PORT, or null when it is set to something that is not a port number. */
export function portFrom(env: Record<string, string | undefined>): number | null {
  const parsed = port.safeParse(env.PORT);
  return parsed.success ? parsed.data : null;
}

const environment = z.object({
  FIREBASE_PROJECT_ID: optional(z.string().trim().regex(/^[A-Za-z0-9._-]{1,128}$/, "is not a Firebase project id").optional()),
  FIREBASE_JWKS_URL: optional(z.url({ protocol: /^https?$/, error: "is not an http(s) URL" }).default(GOOGLE_JWKS_URL)),
  FIREBASE_AUTH_EMULATOR_HOST: optional(z.string().trim().optional()),
  ALLOWED_ORIGINS: optional(z.string().default("*")),
  PORT: port,
  DATABASE_POOL_SIZE: optional(integer(1, 100, "is not a number from 1 to 100").default(10)),
});

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
  };
}
