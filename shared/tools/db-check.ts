import { inspectDatabase } from "../db/check.ts";
import { describeConnectionError } from "../db/connection-error.ts";
import type { Database } from "../db/database.ts";
import { databaseTarget, describeTarget, openDatabase } from "../db/open.ts";

const CONNECT_TIMEOUT_S = 5;

export interface Output {
  log(line: string): void;
  error(line: string): void;
}

/** `npm run db:check`: exit code 0 when the database answers, 1 with one clear line otherwise. */
export async function dbCheck(env: Record<string, string | undefined>, out: Output): Promise<number> {
  let target;
  let db: Database | undefined;
  try {
    target = databaseTarget(env);
    db = await openDatabase(target, { max: 1, connectTimeout: CONNECT_TIMEOUT_S });
    // The driver's own timeout does not cover every way a connection can hang.
    const report = await withDeadline(inspectDatabase(db), (CONNECT_TIMEOUT_S + 2) * 1000);
    out.log(`database: ${describeTarget(target)}`);
    out.log(`server: ${report.server}`);
    const newest = report.newestMigration;
    out.log(`newest migration: ${newest ? `${newest.version} ${newest.name ?? ""}`.trim() : "none applied"}`);
    return 0;
  } catch (error) {
    const url = target?.kind === "postgres" ? target.url : undefined;
    out.error(`db:check failed: ${url ? describeConnectionError(error, url) : oneLine(error)}`);
    return 1;
  } finally {
    await withDeadline(db?.close() ?? Promise.resolve(), 1000).catch(() => {});
  }
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
