/** A problem a person can act on, told in one line; `npm start` prints it and exits 1. */
export class LocalStackError extends Error {
  override name = "LocalStackError";
}
