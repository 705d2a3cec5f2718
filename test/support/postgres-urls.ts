// The Postgres server the tests use; CI and these machines run one on 127.0.0.1:5432 with trust auth.
// An empty TEST_DATABASE_URL counts as unset, as empty variables do everywhere in this project.
export const DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/** Whether TEST_DATABASE_URL chose the server (then it is what to fix when the server is not there). */
export const ADMIN_URL_FROM_VARIABLE = Boolean(process.env.TEST_DATABASE_URL?.trim());

export const ADMIN_URL = ADMIN_URL_FROM_VARIABLE ? process.env.TEST_DATABASE_URL!.trim() : DEFAULT_ADMIN_URL;

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
