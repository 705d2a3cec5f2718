import type { Database } from "../db/database.ts";
import { batchedLines, jsonLogger, type Logger } from "../http/log.ts";
import { ConfigError } from "./config.ts";
import { buildDependencies, type Dependencies } from "./dependencies.ts";
import { FUNCTIONS } from "./functions.ts";
import { createGateway } from "./gateway.ts";
import { survivalOfUnhandledRejections } from "./last-resort.ts";

export interface LocalServer {
  deps: Dependencies;
  handler: (request: Request) => Promise<Response>;
  /** Lines telling a person where everything is. */
  banner(origin: string): string[];
}

/**
 * `npm run serve`: every function behind one gateway, sharing one database pool, one key ring and
 * one key set cache; configured only by the environment, applying no migrations.
 */
export async function buildLocalServer(
  env: Record<string, string | undefined>,
  logger?: Logger,
  database?: Database,
): Promise<LocalServer> {
  // This process owns its standard output: the lines of many requests go out in one write.
  const deps = await buildDependencies(env, { firebase: true, encryption: true }, logger ?? jsonLogger(batchedLines()), database);
  survivalOfUnhandledRejections(deps.logger);
  const functions = Object.fromEntries(
    Object.entries(FUNCTIONS).map(([name, definition]) => [name, definition.build(deps)]),
  );
  return {
    deps,
    handler: createGateway(functions, deps),
    banner: functionUrls,
  };
}

/** Where each function is served from `origin`, a line each, indented for a banner. */
export function functionUrls(origin: string): string[] {
  return Object.keys(FUNCTIONS).map((name) => `  ${origin}/functions/v1/${name}`);
}

export { ConfigError };
