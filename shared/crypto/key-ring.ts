// A primary Fernet key plus the keys it replaced, like Python's `MultiFernet`: new tokens use the
// primary, old tokens keep decrypting until `rotate` has moved them onto the primary.
import {
  decrypt,
  decryptWithTimestamp,
  encrypt,
  extractTimestamp,
  importFernetKey,
  InvalidFernetKey,
  InvalidToken,
  isSignedBy,
} from "./fernet.ts";
import type { DecryptOptions, EncryptOptions, FernetKey } from "./fernet.ts";

export interface KeyRingEnv {
  /** A Fernet key: any text Python's `Fernet(key)` accepts (url-safe or standard base64, padded). */
  ENCRYPTION_KEY?: string | undefined;
  /** Comma-separated, newest first; blanks around and between entries are ignored. */
  PREVIOUS_ENCRYPTION_KEYS?: string | undefined;
}

// One line naming the variable at fault, and never its value: these messages end up in deploy logs.
export class KeyRingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyRingConfigError";
  }
}

/**
 * The ring of ENCRYPTION_KEY and PREVIOUS_ENCRYPTION_KEYS. Each key is read as Python's Fernet reads
 * it (contract, section 1), so two spellings of the same 32 bytes are the same key, with the same
 * id. Throws KeyRingConfigError naming the variable (and the entry's position), never its value.
 */
export async function loadKeyRing(env: KeyRingEnv): Promise<KeyRing> {
  const primary = env.ENCRYPTION_KEY?.trim() ?? "";
  if (primary === "") throw new KeyRingConfigError("ENCRYPTION_KEY is not set");
  const primaryKey = await importConfigured(primary, "ENCRYPTION_KEY");

  const previousKeys: FernetKey[] = [];
  for (const { position, text } of previousKeyEntries(env)) {
    previousKeys.push(await importConfigured(text, `PREVIOUS_ENCRYPTION_KEYS entry ${position}`));
  }
  return new KeyRing(primaryKey, previousKeys);
}

/**
 * The keys of PREVIOUS_ENCRYPTION_KEYS, in the ring's order, each with its position in the variable
 * (from 1, blanks counted), so that an operator can count commas to find one.
 */
export function previousKeyEntries(env: KeyRingEnv): { position: number; text: string }[] {
  return (env.PREVIOUS_ENCRYPTION_KEYS ?? "").split(",").flatMap((entry, index) => {
    const text = entry.trim();
    return text === "" ? [] : [{ position: index + 1, text }];
  });
}

export class KeyRing {
  readonly primaryKeyId: string;
  /** The primary first, then the previous keys in the order they are tried. */
  readonly keyIds: readonly string[];
  readonly #primary: FernetKey;
  readonly #keys: readonly FernetKey[];

  constructor(primary: FernetKey, previous: readonly FernetKey[] = []) {
    this.#primary = primary;
    this.#keys = Object.freeze([primary, ...previous]);
    this.primaryKeyId = primary.id;
    this.keyIds = Object.freeze(this.#keys.map((key) => key.id));
  }

  encrypt(plaintext: Uint8Array | string, options?: EncryptOptions): Promise<string> {
    return encrypt(this.#primary, plaintext, options);
  }

  async decrypt(token: string, options?: DecryptOptions): Promise<Uint8Array> {
    return (await this.decryptWithKeyId(token, options)).plaintext;
  }

  /** Also says which key opened the token, to tell rows still waiting for rotation. */
  async decryptWithKeyId(token: string, options?: DecryptOptions): Promise<{ plaintext: Uint8Array; keyId: string }> {
    const { result, key } = await this.#firstKeyThat((key) => decrypt(key, token, options));
    return { plaintext: result, keyId: key.id };
  }

  // Keeps the original timestamp, as MultiFernet.rotate does, so a ttl still counts from the first
  // encryption; no ttl applies here, since rotating is exactly for the old tokens.
  async rotate(token: string): Promise<string> {
    const { result } = await this.#firstKeyThat((key) => decryptWithTimestamp(key, token));
    return encrypt(this.#primary, result.plaintext, { now: result.timestamp });
  }

  /** The id of the ring's key that signed the token, or null: checks signatures only, decrypts nothing. */
  async keyIdOf(token: string): Promise<string | null> {
    for (const key of this.#keys) {
      if (await isSignedBy(key, token)) return key.id;
    }
    return null;
  }

  async extractTimestamp(token: string): Promise<number> {
    return (await this.#firstKeyThat((key) => extractTimestamp(key, token))).result;
  }

  // Only InvalidToken moves on to the next key; anything else is a real fault and surfaces.
  async #firstKeyThat<T>(attempt: (key: FernetKey) => Promise<T>): Promise<{ result: T; key: FernetKey }> {
    for (const key of this.#keys) {
      try {
        return { result: await attempt(key), key };
      } catch (error) {
        if (!(error instanceof InvalidToken)) throw error;
      }
    }
    throw new InvalidToken();
  }
}

async function importConfigured(text: string, name: string): Promise<FernetKey> {
  try {
    return await importFernetKey(text);
  } catch (error) {
    if (!(error instanceof InvalidFernetKey)) throw error;
    const rule = "32 bytes in padded base64, url-safe or standard alphabet";
    // Python up to 3.12 would read such a text up to its padding, 3.13 and later refuse it.
    const after = error.afterPadding ? "; it goes on after its padding: two keys in one variable, or a comment?" : "";
    throw new KeyRingConfigError(`${name} is not a valid Fernet key (${rule})${after}`);
  }
}
