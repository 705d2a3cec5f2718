// What a benchmark leaves behind when it stops half-way (a scratch database on the local Postgres,
// a server or a load generator it started) is undone here when SIGINT or SIGTERM stops it. Its own
// try/finally blocks cover errors, but a signal ends the process without running them. SIGKILL
// cannot be caught: `withScratchDatabase` then leaves its database, named dms_bench_*, behind.
import process from "node:process";

const SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;
/** The longest the cleanups may take before the process exits anyway: more than a child's grace. */
const CLEANUP_DEADLINE_MS = 90_000;

const pending = new Set<() => Promise<void>>();

/**
 * Runs `work`, then `cleanup`, whether `work` succeeds or throws; and, when SIGINT or SIGTERM
 * arrives while `work` runs, runs the cleanups of everything running (the newest first), then
 * exits with 130 or 143 as a shell would report the signal. `cleanup` runs at most once either way.
 */
export async function withCleanup<T>(cleanup: () => Promise<void>, work: () => Promise<T>): Promise<T> {
  let done: Promise<void> | undefined;
  const once = () => (done ??= cleanup());
  pending.add(once);
  if (pending.size === 1) listen();
  try {
    return await work();
  } finally {
    pending.delete(once);
    if (pending.size === 0) unlisten();
    await once();
  }
}

let interrupted = false;
const handlers = Object.fromEntries(
  Object.entries(SIGNALS).map(([signal, code]) => [signal, () => void interrupt(signal, code)]),
);

function listen(): void {
  for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler);
}

function unlisten(): void {
  for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler);
}

async function interrupt(signal: string, code: number): Promise<void> {
  if (interrupted) return; // a second Ctrl-C while cleaning up: the cleanups are already running
  interrupted = true;
  console.error(`\n${signal}: stopping, cleaning up first`);
  // The work goes on meanwhile and fails as its database and processes go away (a connection
  // terminated mid-write can even throw outside any promise); that must not end the process
  // before the cleanups are done.
  process.on("uncaughtException", () => {});
  process.on("unhandledRejection", () => {});
  const cleanups = [...pending].reverse();
  const deadline = setTimeout(() => process.exit(code), CLEANUP_DEADLINE_MS);
  for (const cleanup of cleanups) {
    await cleanup().catch((error) => console.error(`cleanup failed: ${error instanceof Error ? error.message : error}`));
  }
  clearTimeout(deadline);
  process.exit(code);
}
