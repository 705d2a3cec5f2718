-- Which key encrypted a row: a short one-way fingerprint of the Fernet key (never the key), so that
-- operators and `npm run keys:rotate` can see what is left under an old key. Rows written by the
-- Python backend have none; their key is found by trying the key ring.
ALTER TABLE public.dexcom_tokens ADD COLUMN encryption_key_id VARCHAR(32);
