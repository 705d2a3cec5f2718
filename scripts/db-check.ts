import { dbCheck } from "../shared/tools/db-check.ts";

Deno.exit(await dbCheck(Deno.env.toObject(), console));
