import { startFunction } from "../../shared/app/start-function.ts";

await startFunction("glucose-summary", { env: Deno.env.toObject(), serve: Deno.serve, exit: Deno.exit });
