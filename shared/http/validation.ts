import type { z } from "zod";
import { type ErrorDetail, HttpError } from "./errors.ts";

/** Parses input with a schema; any problem is a 400 validation_failed naming each field. */
export function validate<T>(schema: z.ZodType<T>, input: unknown): T {
  const nul = findNul(input, []);
  if (nul !== null) throw validationFailed([{ path: nul, message: "must not contain the NUL character (U+0000)" }]);
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

// Postgres text cannot hold U+0000, and no legitimate value has one: refused anywhere in the input.
function findNul(value: unknown, path: string[]): string | null {
  if (typeof value === "string") return value.includes("\0") ? path.join(".") || "(body)" : null;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findNul(item, [...path, String(index)]);
      if (found !== null) return found;
    }
    return null;
  }
  if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const found = findNul(key, [...path, "(key)"]) ?? findNul(item, [...path, key]);
      if (found !== null) return found;
    }
  }
  return null;
}
