import { startFunction } from "../../shared/app/start-function.ts";

await startFunction("dexcom-tokens", { env: Deno.env.toObject(), serve: Deno.serve, exit: Deno.exit });
