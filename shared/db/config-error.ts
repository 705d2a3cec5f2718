/** The database settings are wrong or cannot be used as they are; told in one line. */
export class DatabaseConfigError extends Error {
  override name = "DatabaseConfigError";
}
