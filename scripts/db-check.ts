import { loadEnvFile } from "../shared/local/env-file.ts";
import { dbCheck } from "../shared/tools/db-check.ts";

await loadEnvFile("db:check failed");

Deno.exit(await dbCheck(Deno.env.toObject(), console));
