// The original Python backend's tables, column for column, as information_schema reports them.
// [column, data_type, character_maximum_length, is_nullable, column_default]
type Column = [string, string, number | null, "YES" | "NO", string | null];

export const ORIGINAL_COLUMNS: Record<"users" | "dexcom_tokens", Column[]> = {
  users: [
    ["id", "integer", null, "NO", "nextval('users_id_seq'::regclass)"],
    ["firebase_uid", "character varying", 128, "YES", null],
    ["email", "character varying", 255, "YES", null],
    ["dexcom_user_id", "character varying", 255, "YES", null],
    ["created_at", "timestamp with time zone", null, "YES", "now()"],
    ["updated_at", "timestamp with time zone", null, "YES", "now()"],
    ["is_active", "boolean", null, "YES", "true"],
  ],
  dexcom_tokens: [
    ["id", "integer", null, "NO", "nextval('dexcom_tokens_id_seq'::regclass)"],
    ["user_id", "integer", null, "YES", null],
    ["access_token_encrypted", "text", null, "NO", null],
    ["refresh_token_encrypted", "text", null, "NO", null],
    ["token_type", "character varying", 50, "YES", "'Bearer'::character varying"],
    ["expires_in", "integer", null, "NO", null],
    ["expires_at", "timestamp with time zone", null, "NO", null],
    ["created_at", "timestamp with time zone", null, "YES", "now()"],
    ["updated_at", "timestamp with time zone", null, "YES", "now()"],
    ["state", "character varying", 255, "YES", null],
    ["scope", "character varying", 255, "YES", "'offline_access'::character varying"],
    ["is_revoked", "boolean", null, "YES", "false"],
    ["revoked_at", "timestamp with time zone", null, "YES", null],
  ],
};

/** Columns later migrations added; they never replace an original one. */
export const ADDED_COLUMNS: Record<"users" | "dexcom_tokens", Column[]> = {
  users: [],
  dexcom_tokens: [
    ["encryption_key_id", "character varying", 32, "YES", null],
    ["revoked_reason", "character varying", 32, "YES", null],
    ["refresh_lease_holder", "uuid", null, "YES", null],
    ["refresh_lease_expires_at", "timestamp with time zone", null, "YES", null],
  ],
};
