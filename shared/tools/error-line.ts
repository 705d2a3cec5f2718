import { describeConnectionError } from "../db/connection-error.ts";
import type { DatabaseTarget } from "../db/open.ts";

/** One line for a failed command: the database's own words for Postgres, the first line otherwise. */
export function errorLine(error: unknown, target: DatabaseTarget | undefined): string {
  if (target?.kind === "postgres") return describeConnectionError(error, target.url);
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
