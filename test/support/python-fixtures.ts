// The Fernet keys and tokens test/fixtures/fernet/make_fixtures.py made with Python's cryptography.
import { readFileSync } from "node:fs";

export type KeyName = "primary" | "previous" | "other";

export interface TokenCase {
  name: string;
  key: KeyName;
  time: number;
  iv_hex: string;
  plaintext_b64: string;
  token: string;
}

export interface PythonFixtures {
  keys: Record<KeyName, string>;
  tokens: TokenCase[];
  deterministic: TokenCase[];
  invalid: { name: string; key: KeyName; token: string }[];
  ttl: { name: string; key: KeyName; token: string; ttl: number; now: number; valid: boolean }[];
  multi_fernet: {
    keys: KeyName[];
    plaintext_b64: string;
    old_key: KeyName;
    old_token: string;
    old_timestamp: number;
    rotated: string;
    rotated_timestamp: number;
  };
}

export const pythonFixtures = JSON.parse(
  readFileSync(new URL("../fixtures/fernet/python-fixtures.json", import.meta.url), "utf8"),
) as PythonFixtures;
