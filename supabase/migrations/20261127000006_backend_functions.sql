-- The multi-step writes of the API as database functions: each request is one round trip, and the
-- invariants (one active token per user, atomic revoke-then-insert, unique email and Dexcom
-- account) hold inside one transaction under row locks, however many requests race.
-- They live in a schema the Data API does not expose, run with the caller's rights, and only the
-- backend (postgres) may execute them.
CREATE SCHEMA dms;
REVOKE ALL ON SCHEMA dms FROM PUBLIC;

-- Email addresses are compared without regard to case (the API stores them lower-cased; rows
-- from before may not be).
CREATE INDEX users_lower_email_idx ON public.users (lower(email));

-- POST /users: registers the caller or refreshes their row; p_email is lower-cased.
-- outcome: created | updated | unchanged | adopted | email_in_use | user_inactive
CREATE FUNCTION dms.register_user(p_firebase_uid text, p_email text, p_email_verified boolean)
RETURNS TABLE (
    outcome text, id integer, firebase_uid varchar, email varchar, dexcom_user_id varchar,
    is_active boolean, created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v public.users;
    v_outcome text;
BEGIN
    p_email := lower(p_email);
    -- A concurrent first request can take the uid (or the email) between our look and our insert;
    -- then we look again and find its row.
    FOR attempt IN 1..3 LOOP
        SELECT * INTO v FROM public.users u WHERE u.firebase_uid = p_firebase_uid FOR UPDATE;
        IF FOUND THEN
            IF v.is_active IS FALSE THEN
                v_outcome := 'user_inactive';
            ELSIF v.email IS NOT DISTINCT FROM p_email THEN
                v_outcome := 'unchanged';
            ELSIF EXISTS (SELECT 1 FROM public.users u WHERE lower(u.email) = p_email AND u.id <> v.id) THEN
                v_outcome := 'email_in_use';
            ELSE
                BEGIN
                    UPDATE public.users u SET email = p_email WHERE u.id = v.id RETURNING * INTO v;
                    v_outcome := 'updated';
                EXCEPTION WHEN unique_violation THEN
                    v_outcome := 'email_in_use';
                END;
            END IF;
            EXIT;
        END IF;

        IF p_email IS NOT NULL THEN
            -- Another Firebase account's row wins over rows from before Firebase; among those, the
            -- one spelled exactly so, then the oldest.
            SELECT * INTO v FROM public.users u WHERE lower(u.email) = p_email
            ORDER BY u.firebase_uid IS NOT NULL DESC, u.email = p_email DESC, u.id
            LIMIT 1 FOR UPDATE;
            IF FOUND THEN
                -- Our own row, committed by a concurrent first request after we looked by uid:
                -- look again by uid.
                IF v.firebase_uid = p_firebase_uid THEN
                    CONTINUE;
                END IF;
                -- A row from before Firebase is adopted only by a verified owner of the address.
                IF v.firebase_uid IS NOT NULL OR NOT p_email_verified THEN
                    v_outcome := 'email_in_use';
                ELSIF v.is_active IS FALSE THEN
                    v_outcome := 'user_inactive';
                ELSE
                    BEGIN
                        UPDATE public.users u SET firebase_uid = p_firebase_uid, email = p_email
                        WHERE u.id = v.id RETURNING * INTO v;
                        v_outcome := 'adopted';
                    EXCEPTION WHEN unique_violation THEN
                        CONTINUE;
                    END;
                END IF;
                EXIT;
            END IF;
        END IF;

        BEGIN
            INSERT INTO public.users (firebase_uid, email) VALUES (p_firebase_uid, p_email) RETURNING * INTO v;
            v_outcome := 'created';
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
    IF v_outcome IS NULL THEN
        RAISE EXCEPTION 'register_user: the row kept changing under concurrent requests'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN QUERY SELECT v_outcome, v.id, v.firebase_uid, v.email, v.dexcom_user_id,
        v.is_active, v.created_at, v.updated_at;
END;
$$;

-- POST /dexcom-tokens: in one transaction, revokes the caller's active tokens and stores the new
-- one; with a Dexcom user id, records it on the user first (and stores nothing when another user
-- holds it). The user row lock makes concurrent stores for one user take turns.
-- outcome: stored | user_not_found | user_inactive | dexcom_account_in_use
CREATE FUNCTION dms.store_dexcom_token(
    p_firebase_uid text,
    p_access_token_encrypted text,
    p_refresh_token_encrypted text,
    p_expires_in integer,
    p_token_type text,
    p_scope text,
    p_dexcom_user_id text,
    p_encryption_key_id text
)
RETURNS TABLE (
    outcome text, id integer, token_type varchar, scope varchar,
    expires_at timestamptz, created_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_user public.users;
    v_token public.dexcom_tokens;
BEGIN
    SELECT * INTO v_user FROM public.users u WHERE u.firebase_uid = p_firebase_uid FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'user_not_found';
    ELSIF v_user.is_active IS FALSE THEN
        outcome := 'user_inactive';
    ELSIF p_dexcom_user_id IS NOT NULL AND v_user.dexcom_user_id IS DISTINCT FROM p_dexcom_user_id THEN
        BEGIN
            UPDATE public.users u SET dexcom_user_id = p_dexcom_user_id WHERE u.id = v_user.id;
        EXCEPTION WHEN unique_violation THEN
            outcome := 'dexcom_account_in_use';
        END;
    END IF;
    IF outcome IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;

    UPDATE public.dexcom_tokens t SET is_revoked = TRUE, revoked_at = now()
    WHERE t.user_id = v_user.id AND t.is_revoked IS NOT TRUE;

    INSERT INTO public.dexcom_tokens (
        user_id, access_token_encrypted, refresh_token_encrypted, token_type, expires_in,
        expires_at, scope, encryption_key_id
    ) VALUES (
        v_user.id, p_access_token_encrypted, p_refresh_token_encrypted, p_token_type, p_expires_in,
        now() + make_interval(secs => p_expires_in), p_scope, p_encryption_key_id
    ) RETURNING * INTO v_token;

    RETURN QUERY SELECT 'stored'::text, v_token.id, v_token.token_type, v_token.scope,
        v_token.expires_at, v_token.created_at, v_token.updated_at;
END;
$$;

REVOKE ALL ON FUNCTION dms.register_user(text, text, boolean) FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.store_dexcom_token(text, text, text, integer, text, text, text, text)
    FROM PUBLIC, anon, authenticated;
