-- Glucose history: Dexcom's readings (EGVs) copied into Postgres, each user's sync state, and the
-- hourly budget of calls to Dexcom that all processes share. user_id leads every primary and unique
-- key of the per-user tables, so they can be distributed by user (Citus) when one database is not
-- enough; the budget is one small global table (a Citus reference table then).

-- One row per Dexcom recordId per user; a reading sent again updates its row.
CREATE TABLE public.glucose_readings (
    user_id INTEGER NOT NULL REFERENCES public.users(id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    -- systemTime, in UTC: the time the readings are ordered and windowed by.
    system_time TIMESTAMP WITH TIME ZONE NOT NULL,
    -- displayTime exactly as Dexcom sent it (with or without an offset, sometimes without seconds).
    display_time TEXT,
    -- value and unit as sent; value_mg_dl derived by one rule (mmol/L x 18.0182, rounded).
    value NUMERIC,
    unit TEXT,
    value_mg_dl INTEGER GENERATED ALWAYS AS (
        CASE WHEN unit = 'mmol/L' THEN round(value * 18.0182)::integer ELSE round(value)::integer END
    ) STORED,
    status TEXT,
    trend TEXT,
    trend_rate DOUBLE PRECISION,
    rate_unit TEXT,
    display_device TEXT,
    transmitter_generation TEXT,
    transmitter_id TEXT,
    transmitter_ticks BIGINT,
    synced_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, record_id)
);
-- "This user, this window", in time order; the summary reads only what the index holds.
CREATE INDEX glucose_readings_user_time_idx
    ON public.glucose_readings (user_id, system_time) INCLUDE (value_mg_dl, status);

-- One row per user who was ever synced (or tried). The lease makes one sync per user run at a
-- time across every process, as the refresh lease does for tokens.
CREATE TABLE public.dexcom_sync_state (
    user_id INTEGER PRIMARY KEY REFERENCES public.users(id) ON DELETE CASCADE,
    last_attempt_at TIMESTAMP WITH TIME ZONE,
    -- The last sync that finished, what it stored and the newest reading then.
    synced_at TIMESTAMP WITH TIME ZONE,
    last_new_readings INTEGER,
    newest_reading_at TIMESTAMP WITH TIME ZONE,
    -- When the scheduler should sync this user next; moved later after each failure (backoff).
    next_due_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    failures INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR(64),
    -- Dexcom refused the refresh token: skipped until the person connects again.
    needs_reauthorization BOOLEAN NOT NULL DEFAULT FALSE,
    lease_holder UUID,
    lease_expires_at TIMESTAMP WITH TIME ZONE
);
CREATE INDEX dexcom_sync_state_due_idx ON public.dexcom_sync_state (next_due_at);

-- Calls to Dexcom per minute, for a limit over any hour (see dms.spend_dexcom_call).
CREATE TABLE public.dexcom_call_budget (
    minute TIMESTAMP WITH TIME ZONE PRIMARY KEY,
    calls INTEGER NOT NULL
);

ALTER TABLE public.glucose_readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dexcom_sync_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.dexcom_call_budget ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.glucose_readings, public.dexcom_sync_state, public.dexcom_call_budget
    FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON TABLE public.glucose_readings, public.dexcom_sync_state, public.dexcom_call_budget TO service_role;

-- Spends one call of the budget when the last hour leaves room: 0 when granted, else the seconds
-- until a call can be made. Exact for any hour: a call at time T is granted only when the minutes
-- T-60 .. T hold fewer than p_limit calls, so every 60-minute interval, which ends at its last
-- call, holds at most p_limit. The transaction-scoped advisory lock makes concurrent spends take
-- turns (released at commit; nothing of it outlives the transaction, so poolers are fine).
CREATE FUNCTION dms.spend_dexcom_call(p_limit integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    v_minute timestamptz := date_trunc('minute', clock_timestamp());
    v_used integer;
    v_oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(8675309001);
    SELECT coalesce(sum(b.calls), 0), min(b.minute) INTO v_used, v_oldest
    FROM public.dexcom_call_budget b WHERE b.minute >= v_minute - interval '60 minutes';
    IF v_used >= p_limit THEN
        -- Room comes back when the oldest minute in the window leaves it.
        RETURN greatest(1, ceil(extract(epoch FROM (v_oldest + interval '61 minutes' - clock_timestamp())))::integer);
    END IF;
    INSERT INTO public.dexcom_call_budget (minute, calls) VALUES (v_minute, 1)
    ON CONFLICT (minute) DO UPDATE SET calls = public.dexcom_call_budget.calls + 1;
    DELETE FROM public.dexcom_call_budget b WHERE b.minute < v_minute - interval '2 hours';
    RETURN 0;
END;
$$;

-- One window of a sync: the readings upserted on (user_id, record_id) in one statement, and the
-- user's newest reading moved on, so a sync interrupted later keeps this window.
-- p_records: a JSON array of objects with the columns' names (system_time in ISO 8601).
CREATE FUNCTION dms.store_glucose_readings(p_user_id integer, p_records jsonb)
RETURNS TABLE (new_readings integer, newest_reading_at timestamptz)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
DECLARE
    v_new integer;
    v_newest timestamptz;
BEGIN
    WITH written AS (
        INSERT INTO public.glucose_readings AS g (
            user_id, record_id, system_time, display_time, value, unit, status, trend, trend_rate,
            rate_unit, display_device, transmitter_generation, transmitter_id, transmitter_ticks
        )
        SELECT p_user_id, r.record_id, r.system_time, r.display_time, r.value, r.unit, r.status, r.trend,
               r.trend_rate, r.rate_unit, r.display_device, r.transmitter_generation, r.transmitter_id,
               r.transmitter_ticks
        FROM jsonb_to_recordset(p_records) AS r(
            record_id text, system_time timestamptz, display_time text, value numeric, unit text,
            status text, trend text, trend_rate double precision, rate_unit text, display_device text,
            transmitter_generation text, transmitter_id text, transmitter_ticks bigint
        )
        ON CONFLICT (user_id, record_id) DO UPDATE SET
            system_time = excluded.system_time, display_time = excluded.display_time,
            value = excluded.value, unit = excluded.unit, status = excluded.status,
            trend = excluded.trend, trend_rate = excluded.trend_rate, rate_unit = excluded.rate_unit,
            display_device = excluded.display_device,
            transmitter_generation = excluded.transmitter_generation,
            transmitter_id = excluded.transmitter_id, transmitter_ticks = excluded.transmitter_ticks,
            synced_at = now()
        -- xmax is 0 only for a row this statement inserted (not for one it updated).
        RETURNING (g.xmax = 0) AS inserted, g.system_time
    )
    SELECT count(*) FILTER (WHERE inserted)::integer, max(system_time) INTO v_new, v_newest FROM written;

    INSERT INTO public.dexcom_sync_state AS s (user_id, newest_reading_at)
    VALUES (p_user_id, v_newest)
    ON CONFLICT (user_id) DO UPDATE
    SET newest_reading_at = greatest(s.newest_reading_at, excluded.newest_reading_at);

    RETURN QUERY SELECT v_new, (SELECT s.newest_reading_at FROM public.dexcom_sync_state s WHERE s.user_id = p_user_id);
END;
$$;

REVOKE ALL ON FUNCTION dms.spend_dexcom_call(integer) FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION dms.store_glucose_readings(integer, jsonb) FROM PUBLIC, anon, authenticated;
