-- The Dexcom connection: pending OAuth authorizations, a lease that lets one worker at a time
-- refresh a user's single-use refresh token, why a token was revoked, and an audit trail of every
-- change in a token's life. Every change and its audit row are written in one transaction, by the
-- dms functions below (one round trip each).

-- Why a token stopped being active; NULL for rows revoked before this migration.
ALTER TABLE public.dexcom_tokens
    ADD COLUMN revoked_reason VARCHAR(32)
        CONSTRAINT dexcom_tokens_revoked_reason_check CHECK (
            revoked_reason IN ('user_request', 'replaced', 'refreshed', 'refresh_rejected', 'account_deleted')
        ),
    -- The refresh lease: who may refresh this row's refresh token, and until when. A lease, not a
    -- row lock held across the call to Dexcom (that would pin a pooled connection for up to 10 s)
    -- and not an advisory lock (Supabase's transaction pooler does not keep sessions).
    ADD COLUMN refresh_lease_holder UUID,
    ADD COLUMN refresh_lease_expires_at TIMESTAMP WITH TIME ZONE;

-- updated_at tells when the token changed; taking or giving back a lease changes nothing of it.
DROP TRIGGER dexcom_tokens_set_updated_at ON public.dexcom_tokens;
CREATE TRIGGER dexcom_tokens_set_updated_at
    BEFORE UPDATE OF user_id, access_token_encrypted, refresh_token_encrypted, token_type, expires_in,
        expires_at, created_at, state, scope, is_revoked, revoked_at, encryption_key_id, revoked_reason
    ON public.dexcom_tokens
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- OAuth authorizations in progress. Only a SHA-256 hash of the state is kept: a copy of this table
-- cannot complete anyone's authorization. A row is consumed (deleted) by the callback, exactly once.
CREATE TABLE public.dexcom_oauth_states (
    state_hash BYTEA PRIMARY KEY CONSTRAINT dexcom_oauth_states_hash_length CHECK (octet_length(state_hash) = 32),
    user_id INTEGER NOT NULL REFERENCES public.users(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX dexcom_oauth_states_user_id_idx ON public.dexcom_oauth_states (user_id);

-- The audit trail. No foreign keys: events outlive the user and the token they name (user and
-- token ids only, nothing personal, never token material, codes or states).
CREATE TABLE public.dexcom_token_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    user_id INTEGER NOT NULL,
    token_id INTEGER,
    event VARCHAR(32) NOT NULL CONSTRAINT dexcom_token_events_event_check CHECK (
        event IN ('stored', 'refreshed', 'revoked', 'refresh_failed', 'reauthorization_required', 'decrypt_failed')
    ),
    reason VARCHAR(64),
    request_id VARCHAR(128)
);
CREATE INDEX dexcom_token_events_user_id_idx ON public.dexcom_token_events (user_id, occurred_at);

-- Closed to the Data API roles like the other tables; operators (service_role) may read the
-- trail, and nobody but the backend writes it.
ALTER TABLE public.dexcom_oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dexcom_token_events ENABLE ROW LEVEL SECURITY;
-- (Supabase's default privileges give service_role everything on new tables: taken back first.)
REVOKE ALL ON TABLE public.dexcom_oauth_states, public.dexcom_token_events
    FROM PUBLIC, anon, authenticated, service_role;
REVOKE ALL ON SEQUENCE public.dexcom_token_events_id_seq FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON TABLE public.dexcom_token_events TO service_role;

-- Revokes a user's active tokens with a reason and records each revocation.
CREATE FUNCTION dms.revoke_active_dexcom_tokens(p_user_id integer, p_reason text, p_request_id text)
RETURNS integer
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    v_count integer;
BEGIN
    WITH revoked AS (
        UPDATE public.dexcom_tokens t
        SET is_revoked = TRUE, revoked_at = now(), revoked_reason = p_reason,
            refresh_lease_holder = NULL, refresh_lease_expires_at = NULL
        WHERE t.user_id = p_user_id AND t.is_revoked IS NOT TRUE
        RETURNING t.id
    ), recorded AS (
        INSERT INTO public.dexcom_token_events (user_id, token_id, event, reason, request_id)
        SELECT p_user_id, revoked.id, 'revoked', p_reason, p_request_id FROM revoked
        RETURNING 1
    )
    SELECT count(*)::integer INTO v_count FROM recorded;
    RETURN v_count;
END;
$$;

-- POST /dexcom-tokens and the OAuth callback, as in ..06_backend_functions, now recording why the
-- earlier tokens were revoked (replaced) and the new one stored, with the request's id.
-- outcome: stored | user_not_found | user_inactive | dexcom_account_in_use
CREATE FUNCTION dms.store_dexcom_token(
    p_firebase_uid text,
    p_access_token_encrypted text,
    p_refresh_token_encrypted text,
    p_expires_in integer,
    p_token_type text,
    p_scope text,
    p_dexcom_user_id text,
    p_encryption_key_id text,
    p_request_id text
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

    PERFORM dms.revoke_active_dexcom_tokens(v_user.id, 'replaced', p_request_id);

    INSERT INTO public.dexcom_tokens (
        user_id, access_token_encrypted, refresh_token_encrypted, token_type, expires_in,
        expires_at, scope, encryption_key_id
    ) VALUES (
        v_user.id, p_access_token_encrypted, p_refresh_token_encrypted, p_token_type, p_expires_in,
        now() + make_interval(secs => p_expires_in), p_scope, p_encryption_key_id
    ) RETURNING * INTO v_token;
    INSERT INTO public.dexcom_token_events (user_id, token_id, event, request_id)
    VALUES (v_user.id, v_token.id, 'stored', p_request_id);

    RETURN QUERY SELECT 'stored'::text, v_token.id, v_token.token_type, v_token.scope,
        v_token.expires_at, v_token.created_at, v_token.updated_at;
END;
$$;

-- The earlier signature stays for code deployed before this migration (a deploy applies the
-- migrations first): it stores the same way, with no request id.
CREATE OR REPLACE FUNCTION dms.store_dexcom_token(
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
LANGUAGE sql
SECURITY INVOKER
SET search_path = ''
AS $$
    SELECT * FROM dms.store_dexcom_token(p_firebase_uid, p_access_token_encrypted, p_refresh_token_encrypted,
        p_expires_in, p_token_type, p_scope, p_dexcom_user_id, p_encryption_key_id, NULL::text);
$$;

-- DELETE /dexcom-tokens: the caller's active tokens revoked (user_request) and recorded.
-- found is false for an unknown caller; nothing changes for an inactive one.
CREATE FUNCTION dms.disconnect_dexcom(p_firebase_uid text, p_request_id text)
RETURNS TABLE (found boolean, is_active boolean, revoked integer)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    v_user public.users;
BEGIN
    SELECT * INTO v_user FROM public.users u WHERE u.firebase_uid = p_firebase_uid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT FALSE, NULL::boolean, 0;
    ELSIF v_user.is_active IS FALSE THEN
        RETURN QUERY SELECT TRUE, FALSE, 0;
    ELSE
        RETURN QUERY SELECT TRUE, TRUE, dms.revoke_active_dexcom_tokens(v_user.id, 'user_request', p_request_id);
    END IF;
END;
$$;

-- DELETE /users: the active tokens are recorded as revoked (account_deleted) before the cascade
-- deletes them; the trail keeps those events. Returns false when there was no such user.
CREATE FUNCTION dms.delete_user(p_firebase_uid text, p_request_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    v_user_id integer;
BEGIN
    SELECT u.id INTO v_user_id FROM public.users u WHERE u.firebase_uid = p_firebase_uid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    PERFORM dms.revoke_active_dexcom_tokens(v_user_id, 'account_deleted', p_request_id);
    DELETE FROM public.users u WHERE u.id = v_user_id;
    RETURN TRUE;
END;
$$;

-- A refresh's new pair: the old row revoked (refreshed) and the new one inserted, recorded, in one
-- transaction. 'gone' when the old row is no longer active (disconnected, replaced or deleted
-- meanwhile): then nothing is stored, so a disconnect is never undone by a refresh in flight.
-- outcome: stored | gone
CREATE FUNCTION dms.store_refreshed_dexcom_token(
    p_old_token_id integer,
    p_access_token_encrypted text,
    p_refresh_token_encrypted text,
    p_expires_in integer,
    p_token_type text,
    p_encryption_key_id text,
    p_request_id text
)
RETURNS TABLE (outcome text, id integer, expires_at timestamptz)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
#variable_conflict use_column
DECLARE
    v_old public.dexcom_tokens;
    v_new public.dexcom_tokens;
BEGIN
    SELECT * INTO v_old FROM public.dexcom_tokens t
    WHERE t.id = p_old_token_id AND t.is_revoked IS NOT TRUE
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'gone'::text, NULL::integer, NULL::timestamptz;
        RETURN;
    END IF;

    UPDATE public.dexcom_tokens t
    SET is_revoked = TRUE, revoked_at = now(), revoked_reason = 'refreshed',
        refresh_lease_holder = NULL, refresh_lease_expires_at = NULL
    WHERE t.id = v_old.id;
    INSERT INTO public.dexcom_tokens (
        user_id, access_token_encrypted, refresh_token_encrypted, token_type, expires_in,
        expires_at, scope, encryption_key_id
    ) VALUES (
        v_old.user_id, p_access_token_encrypted, p_refresh_token_encrypted,
        coalesce(p_token_type, v_old.token_type), p_expires_in,
        now() + make_interval(secs => p_expires_in), v_old.scope, p_encryption_key_id
    ) RETURNING * INTO v_new;
    INSERT INTO public.dexcom_token_events (user_id, token_id, event, reason, request_id) VALUES
        (v_old.user_id, v_old.id, 'revoked', 'refreshed', p_request_id),
        (v_old.user_id, v_new.id, 'refreshed', NULL, p_request_id);

    RETURN QUERY SELECT 'stored'::text, v_new.id, v_new.expires_at;
END;
$$;

-- Dexcom answered invalid_grant to this row's refresh token. Re-read under the row lock: when the
-- row is still active and no other worker holds a live lease on it, no newer pair exists or is on
-- its way, so the connection is dead: revoked (refresh_rejected) and recorded. Otherwise the row
-- was superseded, or another worker's refresh (which used the token first) is about to store the
-- new pair; it is left alone.
-- outcome: revoked | superseded | contended
CREATE FUNCTION dms.reject_dexcom_refresh(p_token_id integer, p_lease_holder uuid, p_request_id text)
RETURNS text
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    v_old public.dexcom_tokens;
BEGIN
    SELECT * INTO v_old FROM public.dexcom_tokens t
    WHERE t.id = p_token_id AND t.is_revoked IS NOT TRUE
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'superseded';
    END IF;
    IF v_old.refresh_lease_holder IS DISTINCT FROM p_lease_holder AND v_old.refresh_lease_expires_at > now() THEN
        RETURN 'contended';
    END IF;
    UPDATE public.dexcom_tokens t
    SET is_revoked = TRUE, revoked_at = now(), revoked_reason = 'refresh_rejected',
        refresh_lease_holder = NULL, refresh_lease_expires_at = NULL
    WHERE t.id = v_old.id;
    INSERT INTO public.dexcom_token_events (user_id, token_id, event, reason, request_id) VALUES
        (v_old.user_id, v_old.id, 'reauthorization_required', 'invalid_grant', p_request_id),
        (v_old.user_id, v_old.id, 'revoked', 'refresh_rejected', p_request_id);
    RETURN 'revoked';
END;
$$;

REVOKE ALL ON FUNCTION dms.revoke_active_dexcom_tokens(integer, text, text) FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.store_dexcom_token(text, text, text, integer, text, text, text, text, text)
    FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.disconnect_dexcom(text, text) FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.delete_user(text, text) FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.store_refreshed_dexcom_token(integer, text, text, integer, text, text, text)
    FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.reject_dexcom_refresh(integer, uuid, text) FROM PUBLIC, anon, authenticated;
