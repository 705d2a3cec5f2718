-- Only the backend (connecting as postgres) reads these tables. The Data API roles get nothing:
-- RLS is on with no policy, and every privilege is revoked, so a leaked anon key reads nothing.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dexcom_tokens ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON TABLE public.users, public.dexcom_tokens FROM PUBLIC, anon, authenticated;
REVOKE ALL ON SEQUENCE public.users_id_seq, public.dexcom_tokens_id_seq FROM PUBLIC, anon, authenticated;

-- service_role is Supabase's administrative key (Studio, operator scripts); new projects no
-- longer grant it anything by default, so say what it may do.
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.users, public.dexcom_tokens TO service_role;
GRANT USAGE, SELECT ON SEQUENCE public.users_id_seq, public.dexcom_tokens_id_seq TO service_role;

-- Objects that later migrations create start closed too: no automatic grants to the API roles,
-- and no EXECUTE for PUBLIC on new functions.
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Databases adopted from the Python backend still carry Alembic's bookkeeping table, which the
-- old defaults exposed to the API roles too; close it like the rest.
DO $$
BEGIN
    IF to_regclass('public.alembic_version') IS NOT NULL THEN
        ALTER TABLE public.alembic_version ENABLE ROW LEVEL SECURITY;
        REVOKE ALL ON TABLE public.alembic_version FROM PUBLIC, anon, authenticated;
    END IF;
END
$$;
