// Structured logs: one JSON object per line, for Supabase's log explorer or any collector.
// Callers pass only fields that are safe to keep: never headers, bodies or tokens.
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export function jsonLogger(write: (line: string) => void = (line) => console.log(line)): Logger {
  const emit = (level: string) => (event: string, fields: LogFields = {}) =>
    write(JSON.stringify({ time: isoNow(), level, event, ...fields }));
  return { info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/**
 * A writer for jsonLogger that hands `write` the lines of one run of queued work together, joined
 * by newlines, so the output is the same lines: console.log costs several times the line itself
 * (formatting, a system call), once per call. For a process that owns its standard output
 * (`npm run serve`, `npm start`); not for Supabase's runtime, where each console.log is one log
 * event. The lines go out in a microtask queued with the first of them: before any timer or I/O
 * callback that comes after them.
 */
export function batchedLines(write: (text: string) => void = (text) => console.log(text)): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    const lines = pending;
    pending = [];
    write(lines.join("\n"));
  };
  return (line) => {
    if (pending.push(line) === 1) queueMicrotask(flush);
  };
}

// Many lines share a millisecond under load; its ISO text is made once.
let lastMs = NaN;
let lastIso = "";
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** What of an unexpected error goes into a log: never the error object itself, whose driver fields can hold query parameters. */
export function describeError(error: unknown): LogFields {
  if (!(error instanceof Error)) return { error: typeof error };
  const code = (error as { code?: unknown }).code;
  return { error: error.name, message: error.message, ...(code === undefined ? {} : { code }), stack: error.stack };
}
