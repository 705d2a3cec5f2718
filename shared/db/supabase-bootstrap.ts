import type { Queryable } from "./database.ts";

// What a new Supabase database already has before any migration runs: the API roles, the auth and
// extensions schemas, and default privileges that grant the API roles everything new in public.
// The migrations do not need it (they create the API roles where missing, so `supabase db push`
// works on any plain PostgreSQL); PGlite (`npm start`) and the tests' databases get it first so
// that migrations meet the same world as on Supabase, including the generous defaults they have
// to lock down, and the tests prove they do.
// Idempotent: roles are cluster-wide and may already exist.

export const supabaseBootstrapSql = `
DO $bootstrap$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    CREATE ROLE authenticator LOGIN NOINHERIT;
  END IF;
END
$bootstrap$;

GRANT anon, authenticated, service_role TO authenticator;

CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA public, extensions TO anon, authenticated, service_role;

CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT nullif(current_setting('request.jwt.claim.role', true), '')::text $$;

ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
`;

/**
 * Gives a database what Supabase would have made, unless it already has it: a Supabase database
 * (or one bootstrapped before) has the auth schema; a plain Postgres or a new PGlite does not.
 */
export async function bootstrapUnlessSupabase(db: Queryable): Promise<void> {
  const [row] = await db.query<{ supabase: boolean }>("SELECT to_regnamespace('auth') IS NOT NULL AS supabase");
  if (!row?.supabase) await db.exec(supabaseBootstrapSql);
}
