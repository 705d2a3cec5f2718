import { dexcomEgvsFunction } from "../dexcom/egvs-function.ts";
import { dexcomOAuthFunction } from "../dexcom/oauth-function.ts";
import { dexcomTokensFunction } from "../dexcom-tokens/function.ts";
import { glucoseReadingsFunction } from "../glucose/readings-function.ts";
import { glucoseSummaryFunction } from "../glucose/summary-function.ts";
import { dexcomSyncFunction } from "../glucose/sync-function.ts";
import { healthFunction } from "../health/function.ts";
import { usersFunction } from "../users/function.ts";
import type { Dependencies } from "./dependencies.ts";
import type { Needs } from "./config.ts";

export interface FunctionDefinition {
  needs: Needs;
  build(deps: Dependencies): (request: Request) => Promise<Response>;
}

/** Every edge function by its name, with what its configuration must provide. */
export const FUNCTIONS = {
  health: { needs: {}, build: healthFunction },
  users: { needs: { firebase: true }, build: usersFunction },
  "dexcom-tokens": { needs: { firebase: true, encryption: true }, build: dexcomTokensFunction },
  "dexcom-oauth": { needs: { firebase: true, encryption: true }, build: dexcomOAuthFunction },
  "dexcom-egvs": { needs: { firebase: true, encryption: true }, build: dexcomEgvsFunction },
  "dexcom-sync": { needs: { firebase: true, encryption: true }, build: dexcomSyncFunction },
  "glucose-readings": { needs: { firebase: true }, build: glucoseReadingsFunction },
  "glucose-summary": { needs: { firebase: true }, build: glucoseSummaryFunction },
} satisfies Record<string, FunctionDefinition>;

export type FunctionName = keyof typeof FUNCTIONS;
