// Reads a Fernet key's text the way Python's `Fernet(key)` does, so that every key a Python
// deployment runs with runs here too (contract, section 1: "every key that Python's Fernet accepts").
//
// Python (cryptography's `Fernet.__init__`) calls `base64.urlsafe_b64decode(key)`: a str key must be
// ASCII; `-` and `_` become `+` and `/`; then `binascii.a2b_base64` decodes leniently (CPython
// Modules/binascii.c, strict_mode=False). Hence both alphabets are read, even mixed in one key; any
// other ASCII character (whitespace, newlines, quotes, punctuation) is skipped; an `=` only counts
// once two or three characters of a group are in, and enough of them end the data; the bits past
// the last byte need not be zero. The caller then requires 32 bytes.
//
// The one refusal Python does not make: base64 characters after the padding that ends the data.
// Pythons disagree there: up to 3.12 that padding ends the input and the rest is dropped
// (`KEY1= KEY2=` reads as KEY1), from 3.13 on the rest is decoded as well (`KEY1= KEY2=` is 64 bytes,
// refused). Such a key would name different bytes, or none, depending on which Python read it, and
// is most likely two keys in one variable; it is refused rather than guessed at.

const PAD = 0x3d;
const SEXTETS = new Int8Array(128).fill(-1);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  .split("")
  .forEach((char, value) => (SEXTETS[char.charCodeAt(0)] = value));
SEXTETS["-".charCodeAt(0)] = 62;
SEXTETS["_".charCodeAt(0)] = 63;

/** The bytes of a key's text, or why there are none. */
export type KeyDecoding =
  | { bytes: Uint8Array<ArrayBuffer>; problem?: undefined }
  | { bytes?: undefined; problem: "not base64" | "data after padding" };

/**
 * The bytes Python's `base64.urlsafe_b64decode(text)` gives for `text`; "not base64" where Python
 * raises, "data after padding" where Python versions disagree (base64 after the closing padding).
 * Any length; the caller checks it. The bytes are key material: the caller zeroes them when done.
 */
export function decodeKeyBase64(text: string): KeyDecoding {
  const out = new Uint8Array(Math.ceil(text.length / 4) * 3);
  let o = 0;
  let quadPos = 0;
  let left = 0;
  let pads = 0;
  let closed = false;
  let afterPadding = false;
  let valid = true;
  for (let i = 0; i < text.length && valid; i++) {
    const code = text.charCodeAt(i);
    // Python encodes a str key as ASCII first, and raises on anything else.
    if (code > 0x7f) valid = false;
    else if (closed) afterPadding ||= SEXTETS[code]! >= 0;
    else if (code === PAD) closed = quadPos >= 2 && quadPos + ++pads >= 4;
    else {
      const value = SEXTETS[code]!;
      if (value < 0) continue;
      pads = 0;
      if (quadPos === 1) out[o++] = (left << 2) | (value >>> 4);
      else if (quadPos === 2) out[o++] = ((left & 0x0f) << 4) | (value >>> 2);
      else if (quadPos === 3) out[o++] = ((left & 0x03) << 6) | value;
      left = value;
      quadPos = (quadPos + 1) % 4;
    }
  }
  // Ending inside a group without its padding is Python's "Incorrect padding" (or one character
  // too many); a group closed by its padding keeps what it decoded and drops its spare bits.
  if (!valid || afterPadding || (!closed && quadPos !== 0)) {
    out.fill(0);
    return { problem: valid && afterPadding ? "data after padding" : "not base64" };
  }
  return { bytes: out.subarray(0, o) };
}
