// A query parameter given twice (?start=a&start=b) has no one meaning: URLSearchParams.get would
// quietly take the first, while a proxy or another framework in front may take the last. So an
// endpoint refuses it rather than guess.
import { validationFailed } from "./validation.ts";

/** The names among `names` that the query gives more than once, in the order of `names`. */
export function repeatedParameters(params: URLSearchParams, names: readonly string[]): string[] {
  return names.filter((name) => params.getAll(name).length > 1);
}

/**
 * The query of `url`, once none of `names` (the parameters the endpoint reads) is given more than
 * once; parameters it does not read are not looked at. Names are compared decoded
 * (`st%61rt` is `start`), values are not inspected (`?tz=UTC&tz=UTC` is refused too).
 * Throws 400 validation_failed with `details: [{path: "<name>", message: "is given more than once"}]`,
 * one per repeated name.
 */
export function readQuery(url: string, names: readonly string[]): URLSearchParams {
  const params = new URL(url).searchParams;
  const repeated = repeatedParameters(params, names);
  if (repeated.length > 0) throw validationFailed(repeated.map((path) => ({ path, message: "is given more than once" })));
  return params;
}
