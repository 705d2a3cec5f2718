// The time window of a history query (?start&end), as the contract defines it: ISO 8601 (no
// offset = UTC), start included, end excluded, a default length ending now, and a longest window.
import { parseInstant } from "../dexcom/iso-time.ts";
import type { ErrorDetail } from "../http/errors.ts";
import { validationFailed } from "../http/validation.ts";

export interface Window {
  start: Date;
  end: Date;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * `start` and `end` from the query. Both absent: the `defaultMs` before now. Only one: the other is
 * `defaultMs` away from it.
 * Errors (400 validation_failed, naming the parameter): not ISO 8601, start after end, longer than `maxMs`.
 */
export function readWindow(
  params: URLSearchParams,
  options: { defaultMs: number; maxMs: number; now?: Date },
): Window {
  const problems: ErrorDetail[] = [];
  const read = (name: "start" | "end"): Date | null | undefined => {
    const text = params.get(name);
    if (text === null) return undefined;
    const at = text.length <= 64 ? parseInstant(text) : null;
    if (at === null) problems.push({ path: name, message: "is not an ISO 8601 date-time" });
    return at;
  };
  const start = read("start");
  const end = read("end");
  if (problems.length > 0) throw validationFailed(problems);

  const now = options.now ?? new Date();
  const endAt = end ?? (start ? new Date(start.getTime() + options.defaultMs) : now);
  const startAt = start ?? new Date(endAt.getTime() - options.defaultMs);
  if (startAt > endAt) throw validationFailed([{ path: "start", message: "must not be after end" }]);
  if (endAt.getTime() - startAt.getTime() > options.maxMs) {
    throw validationFailed([{ path: "end", message: `must be at most ${options.maxMs / DAY_MS} days after start` }]);
  }
  return { start: startAt, end: endAt };
}
