// Every process a benchmark starts is stopped by it, also when the benchmark fails or is
// interrupted (SIGINT/SIGTERM, see interruptible.ts): none is left running, holding a port or a
// connection to a database that is about to be dropped.
import { withCleanup } from "./interruptible.ts";

/** How long a child has, after SIGTERM, to stop by itself before it gets SIGKILL, by default. */
const STOP_GRACE_MS = 10_000;

/**
 * Spawns `command` and runs `work` with the child; then stops the child (SIGTERM, SIGKILL after
 * `graceMs`) and waits for its exit, whether `work` resolved, threw, or the bench was interrupted.
 */
export function withChild<T>(
  command: Deno.Command,
  work: (child: Deno.ChildProcess) => Promise<T>,
  graceMs = STOP_GRACE_MS,
): Promise<T> {
  const child = command.spawn();
  return withCleanup(() => stop(child, graceMs), () => work(child));
}

/** Runs `command` to its end and collects its output, as Deno.Command.output() does. */
export function outputOf(command: Deno.Command): Promise<Deno.CommandOutput> {
  return withChild(command, (child) => child.output());
}

async function stop(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  const force = setTimeout(() => signal(child, "SIGKILL"), graceMs);
  signal(child, "SIGTERM");
  try {
    await child.status;
  } finally {
    clearTimeout(force);
  }
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // already exited
  }
}
