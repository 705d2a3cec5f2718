-- The Data API roles that this and later migrations lock out (anon, authenticated) or grant to
-- (service_role). Every Supabase database has them before any migration runs; a plain PostgreSQL
-- (self-hosting) does not, and the statements below would fail with `role "anon" does not exist`.
-- So they are created here, as Supabase defines them, only where they are missing: where they
-- exist (Supabase, or any database this migration already ran on, since it needed them) this block
-- does nothing, so the migration's effect there is unchanged. Creating them rather than guarding
-- each GRANT/REVOKE keeps one schema everywhere: the same privileges, and a PostgREST put in front
-- of a plain server later still finds every table closed. Roles belong to the whole server, and
-- another database on it may have made them already; hence the checks. Creating them needs a
-- superuser such as `postgres` (service_role's BYPASSRLS); elsewhere an admin makes them first.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END
$roles$;

-- updated_at is kept by the database so that no writer can forget it.
CREATE FUNCTION public.set_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

REVOKE ALL ON FUNCTION public.set_updated_at() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TRIGGER dexcom_tokens_set_updated_at
    BEFORE UPDATE ON public.dexcom_tokens
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
