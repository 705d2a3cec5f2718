import type { Database } from "../db/database.ts";
import { newestMigration } from "../db/check.ts";
import { isDatabaseUnavailable } from "../db/unavailable.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";

export interface HealthDependencies {
  db: Database;
  logger: Logger;
  allowedOrigins: readonly string[];
}

export function healthFunction(deps: HealthDependencies): (request: Request) => Promise<Response> {
  async function health(context: RequestContext): Promise<Response> {
    try {
      return jsonResponse(200, { status: "ok", database: "ok", schema_version: (await newestMigration(deps.db))?.version ?? null });
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      return jsonResponse(503, {
        status: "unavailable",
        database: "unreachable",
        schema_version: null,
        error: "database_unavailable",
        message: "The database is unavailable.",
        request_id: context.requestId,
      }, { "retry-after": "5" });
    }
  }

  return createFunction({ name: "health", routes: { "": { GET: health } }, logger: deps.logger, allowedOrigins: deps.allowedOrigins });
}
