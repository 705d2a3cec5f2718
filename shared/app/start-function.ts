import { ConfigError } from "./config.ts";
import { buildDependencies } from "./dependencies.ts";
import { survivalOfUnhandledRejections } from "./last-resort.ts";
import { FUNCTIONS, type FunctionName } from "./functions.ts";

/** What a runtime gives an entry file; Deno's in functions/, anything alike in tests. */
export interface Runtime {
  env: Record<string, string | undefined>;
  serve(handler: (request: Request) => Promise<Response>): unknown;
  exit(code: number): never;
  /** Supabase's `EdgeRuntime.waitUntil`, where there is one. */
  waitUntil?(task: Promise<unknown>): void;
}

/** A deployed function: configuration from the environment, read once, or one line per problem and exit 1. */
export async function startFunction(name: FunctionName, runtime: Runtime): Promise<void> {
  const definition = FUNCTIONS[name];
  try {
    const deps = await buildDependencies(runtime.env, { ...definition.needs, server: true }, undefined, undefined, runtime.waitUntil);
    survivalOfUnhandledRejections(deps.logger);
    runtime.serve(definition.build(deps));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) console.error(`${name}: ${problem}`);
    runtime.exit(1);
  }
}
