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
    write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }));
  return { info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** What of an unexpected error goes into a log: never the error object itself, whose driver fields can hold query parameters. */
export function describeError(error: unknown): LogFields {
  if (!(error instanceof Error)) return { error: typeof error };
  const code = (error as { code?: unknown }).code;
  return { error: error.name, message: error.message, ...(code === undefined ? {} : { code }), stack: error.stack };
}
