import { createFirebaseVerifier, type FirebaseVerifier } from "../auth/firebase-verifier.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database } from "../db/database.ts";
import { DatabaseConfigError, openDatabase } from "../db/open.ts";
import { createDexcomServices, type DexcomServices } from "../dexcom/services.ts";
import { jsonLogger, type Logger } from "../http/log.ts";
import { type Config, ConfigError, loadConfig, type Needs } from "./config.ts";

/** What the functions are built from; every piece can be replaced in tests. */
export interface Dependencies {
  config: Config;
  db: Database;
  verifier: FirebaseVerifier;
  keyRing: KeyRing;
  logger: Logger;
  allowedOrigins: readonly string[];
  /** The Dexcom client, token service and sync; null when the DEXCOM_* variables are unset. */
  dexcom: DexcomServices | null;
  /**
   * Keeps work going after the response (the first sync after connecting): Supabase's
   * `EdgeRuntime.waitUntil` when deployed; elsewhere the process simply lives on.
   */
  background(task: Promise<unknown>): void;
}

// The contract: a database that does not answer within 5 s gives 503. Each operation (waiting for a
// pooled connection, connecting, locks, statements) gets 4 s, so the 503 leaves well within 5 s; a
// new connection may take all of it (a server slow to accept is still served).
const CONNECT_TIMEOUT_S = 4;
export const DATABASE_DEADLINE_MS = 4_000;

export async function buildDependencies(
  env: Record<string, string | undefined>,
  needs: Needs,
  logger: Logger = jsonLogger(),
  /** An open database to use instead of the configured one (`npm start` has migrated it already). */
  database?: Database,
  waitUntil?: (task: Promise<unknown>) => void,
): Promise<Dependencies> {
  const config = await loadConfig(env, needs);
  const db = database ?? await openConfigured(config);
  const firebase = config.firebase;
  if (firebase?.emulatorHost) {
    logger.warn("firebase_emulator_mode", {
      message: `WARNING: FIREBASE_AUTH_EMULATOR_HOST is set (${firebase.emulatorHost}): UNSIGNED Firebase ID tokens ` +
        "are accepted. This is for local development only; never set it in production.",
    });
  }
  const verifier = firebase
    ? createFirebaseVerifier({ projectId: firebase.projectId, jwksUrl: firebase.jwksUrl, emulator: firebase.emulatorHost !== null })
    : unconfiguredVerifier;
  // Only functions that declared the need get here with a key ring; the others never encrypt.
  const keyRing = config.keyRing as KeyRing;
  if (config.dexcom && config.dexcom.appRedirectUrl === null) {
    logger.warn("dexcom_oauth_not_configured", {
      message: "DEXCOM_APP_REDIRECT_URL is not set: /dexcom-oauth answers 503 not_configured (the other Dexcom endpoints work).",
    });
  }
  return {
    config,
    db,
    verifier,
    keyRing,
    logger,
    allowedOrigins: config.allowedOrigins,
    dexcom: config.dexcom && keyRing ? createDexcomServices(config.dexcom, { db, keyRing, logger }) : null,
    // Tasks handle their own errors; this only keeps the isolate alive for them.
    background: (task) => waitUntil?.(task),
  };
}

async function openConfigured(config: Config): Promise<Database> {
  try {
    return await openDatabase(config.database, {
      max: config.databasePoolSize,
      connectTimeout: CONNECT_TIMEOUT_S,
      deadlineMs: DATABASE_DEADLINE_MS,
    });
  } catch (error) {
    if (error instanceof DatabaseConfigError) throw new ConfigError([error.message]);
    throw error;
  }
}

const unconfiguredVerifier: FirebaseVerifier = {
  verify: () => Promise.reject(new Error("this function was built without Firebase configuration")),
};
