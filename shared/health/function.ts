import type { Database } from "../db/database.ts";
import { schemaState } from "../db/schema-state.ts";
import { isDatabaseUnavailable } from "../db/unavailable.ts";
import { createFunction, type RequestContext } from "../http/app.ts";
import { jsonResponse } from "../http/errors.ts";
import type { Logger } from "../http/log.ts";

export interface HealthDependencies {
  db: Database;
  logger: Logger;
  allowedOrigins: readonly string[];
}

/**
 * `GET /health`: 200 when the database answers and has every migration this code ships; 503
 * `database: unreachable` (with Retry-After) when it does not answer, 503 `schema: missing | behind`
 * when it answers without the schema the code needs (an operator must push the migrations).
 */
export function healthFunction(deps: HealthDependencies): (request: Request) => Promise<Response> {
  async function health(context: RequestContext): Promise<Response> {
    let state;
    try {
      state = await schemaState(deps.db);
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      deps.logger.warn("database_unavailable", { request_id: context.requestId, code: (error as { code?: unknown }).code });
      return jsonResponse(503, {
        status: "unavailable",
        database: "unreachable",
        schema_version: null,
        error: "database_unavailable",
        message: "The database is unavailable.",
        request_id: context.requestId,
      }, { "retry-after": "5" });
    }
    if (state.schema === "ok") return jsonResponse(200, { status: "ok", database: "ok", schema_version: state.version });
    deps.logger.warn("schema_not_current", { request_id: context.requestId, schema: state.schema, schema_version: state.version });
    return jsonResponse(503, {
      status: "unavailable",
      database: "ok",
      schema: state.schema,
      schema_version: state.version,
      message: state.schema === "missing"
        ? "The database has no migrations applied; push them (npx supabase db push)."
        : "The database lacks migrations this code needs; push them (npx supabase db push).",
      request_id: context.requestId,
    });
  }

  return createFunction({ name: "health", routes: { "": { GET: health } }, logger: deps.logger, allowedOrigins: deps.allowedOrigins });
}
