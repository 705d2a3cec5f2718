import { startFunction } from "../../shared/app/start-function.ts";

await startFunction("dexcom-egvs", { env: Deno.env.toObject(), serve: Deno.serve, exit: Deno.exit });
