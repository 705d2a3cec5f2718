import type { z } from "zod";
import { type ErrorDetail, HttpError } from "./errors.ts";

/** Parses input with a schema; any problem is a 400 validation_failed naming each field. */
export function validate<T>(schema: z.ZodType<T>, input: unknown): T {
  const bad = findBadString(input);
  if (bad !== null) throw validationFailed([bad]);
  const result = schema.safeParse(input);
  if (!result.success) {
    throw validationFailed(result.error.issues.flatMap((issue): ErrorDetail[] => {
      const path = issue.path.join(".");
      if (issue.code === "unrecognized_keys") {
        return issue.keys.map((key) => ({ path: path ? `${path}.${key}` : key, message: "is not a known field" }));
      }
      return [{ path: path || "(body)", message: issue.message }];
    }));
  }
  return result.data;
}

export function validationFailed(details: ErrorDetail[]): HttpError {
  return new HttpError(400, "validation_failed", "The request is not valid; see details.", { details });
}

// Postgres text cannot hold U+0000, and a lone UTF-16 surrogate would be stored as U+FFFD, changing
// the value; no legitimate input has either, so both are refused anywhere in the input. Iterative:
// JSON nested thousands of levels deep fits in 64 KiB and must not exhaust the stack.
const LONE_SURROGATE = /\p{Surrogate}/u;

// Where a value sits, as a chain to its parent: paths are only spelled out for the one bad value.
interface Place {
  key: string;
  parent: Place | null;
}

function findBadString(input: unknown): ErrorDetail | null {
  const pending: [unknown, Place | null][] = [[input, null]];
  while (pending.length > 0) {
    const [value, place] = pending.pop()!;
    if (typeof value === "string") {
      if (value.includes("\0")) return { path: spell(place), message: "must not contain the NUL character (U+0000)" };
      if (LONE_SURROGATE.test(value)) return { path: spell(place), message: "must be valid Unicode (no lone surrogates)" };
    } else if (typeof value === "object" && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        pending.push([key, { key: "(key)", parent: place }], [item, { key, parent: place }]);
      }
    }
  }
  return null;
}

function spell(place: Place | null): string {
  const keys: string[] = [];
  for (let at = place; at !== null; at = at.parent) keys.push(at.key);
  return keys.length === 0 ? "(body)" : keys.reverse().join(".");
}
