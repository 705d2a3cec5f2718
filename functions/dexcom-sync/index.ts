import { startFunction } from "../../shared/app/start-function.ts";

await startFunction("dexcom-sync", { env: Deno.env.toObject(), serve: Deno.serve, exit: Deno.exit });
