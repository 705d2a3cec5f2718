import { describeError, type Logger } from "../http/log.ts";

interface RejectionEvent extends Event {
  reason?: unknown;
}

let installed = false;

/**
 * The last line of defence against a rejection nobody handles, which would otherwise end a Deno
 * process (and every request it serves): it is logged as `unhandled_rejection` and the server goes
 * on. The known sources are closed where they are (the database driver's type lookup is off, its
 * cancel requests are awaited); this covers what a misbehaving database or pooler may still reach
 * inside a driver. Uses the web-standard `unhandledrejection` event of Deno and Supabase's edge
 * runtime; where there is none (Node, which runs the tests and should see such a rejection), it
 * does nothing. Installed once per process.
 */
export function survivalOfUnhandledRejections(logger: Logger, target: Partial<EventTarget> = globalThis): void {
  if (installed || typeof target.addEventListener !== "function") return;
  installed = true;
  target.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger.error("unhandled_rejection", describeError((event as RejectionEvent).reason));
  });
}
