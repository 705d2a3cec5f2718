import type { DexcomConfig } from "../app/config.ts";
import type { KeyRing } from "../crypto/key-ring.ts";
import type { Database } from "../db/database.ts";
import type { Logger } from "../http/log.ts";
import { callBudget } from "./call-budget.ts";
import { createDexcomClient, type DexcomClient } from "./client.ts";
import { createTokenService, type TokenService } from "./token-service.ts";
import { createGlucoseSync, type GlucoseSync } from "../glucose/sync.ts";

/** The Dexcom connection of one process: its one client, the token service over it, and the sync. */
export interface DexcomServices {
  config: DexcomConfig;
  client: DexcomClient;
  tokens: TokenService;
  sync: GlucoseSync;
}

export function createDexcomServices(
  config: DexcomConfig,
  deps: { db: Database; keyRing: KeyRing; logger: Logger; fetch?: typeof fetch },
): DexcomServices {
  const client = createDexcomClient({
    baseUrl: config.apiBaseUrl,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    redirectUri: config.redirectUri,
    fetch: deps.fetch,
    onCall: callBudget(deps.db, config.callsPerHour),
  });
  const tokens = createTokenService({ db: deps.db, keyRing: deps.keyRing, client, logger: deps.logger });
  const sync = createGlucoseSync({
    db: deps.db,
    dexcom: { client, tokens },
    logger: deps.logger,
    settings: { backfillDays: config.backfillDays, intervalMinutes: config.syncIntervalMinutes },
  });
  return { config, client, tokens, sync };
}

/**
 * The time a request may spend with Dexcom, waits included: every request is answered within
 * 15 s, and after Dexcom there may still be a database write (4 s at most).
 */
export const DEXCOM_REQUEST_BUDGET_MS = 11_000;
