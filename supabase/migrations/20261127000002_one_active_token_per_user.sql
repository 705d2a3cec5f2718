-- Every lookup and the ON DELETE CASCADE go through user_id.
CREATE INDEX dexcom_tokens_user_id_idx ON public.dexcom_tokens (user_id);

-- Legacy data can hold several active tokens for one user: keep the newest (latest created_at,
-- then highest id) and revoke the rest, so that the unique index below can be built.
-- A NULL is_revoked counts as active, as the old backend treated it.
WITH ranked AS (
    SELECT id,
           row_number() OVER (
               PARTITION BY user_id
               ORDER BY created_at DESC NULLS LAST, id DESC
           ) AS position
    FROM public.dexcom_tokens
    WHERE is_revoked IS NOT TRUE AND user_id IS NOT NULL
)
UPDATE public.dexcom_tokens AS t
SET is_revoked = TRUE, revoked_at = now()
FROM ranked
WHERE t.id = ranked.id AND ranked.position > 1;

-- At most one active token per user, however many writers race.
CREATE UNIQUE INDEX dexcom_tokens_one_active_per_user
    ON public.dexcom_tokens (user_id)
    WHERE is_revoked IS NOT TRUE;
