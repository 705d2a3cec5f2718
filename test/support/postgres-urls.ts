// The Postgres server the tests use; CI and these machines run one on 127.0.0.1:5432 with trust auth.
export const ADMIN_URL = process.env.TEST_DATABASE_URL ??
  "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable";

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
