// A self-signed X.509 certificate for a test RSA key, as Google publishes its securetoken keys for
// firebase-admin (a JSON map kid -> PEM certificate). Node can read certificates but not make
// them, so the DER is assembled here: version 3, sha256WithRSAEncryption, CN=<commonName>, no
// extensions. Nothing but the key inside is used by firebase-admin; the signature is real anyway.

const SHA256_WITH_RSA = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]; // 1.2.840.113549.1.1.11
const COMMON_NAME = [0x55, 0x04, 0x03]; // 2.5.4.3

export interface CertificateOptions {
  commonName?: string;
  /** Milliseconds since the epoch; default a day before now until a day after. */
  notBefore?: number;
  notAfter?: number;
}

export async function selfSignedCertificate(
  publicKey: CryptoKey,
  privateKey: CryptoKey,
  options: CertificateOptions = {},
): Promise<string> {
  const name = sequence(set(sequence(tlv(0x06, COMMON_NAME), tlv(0x0c, utf8(options.commonName ?? "test")))));
  const algorithm = sequence(tlv(0x06, SHA256_WITH_RSA), tlv(0x05, []));
  const day = 86_400_000;
  const serial = [0x01, ...crypto.getRandomValues(new Uint8Array(8))];
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, [0x02])),
    tlv(0x02, serial),
    algorithm,
    name,
    sequence(utcTime(options.notBefore ?? Date.now() - day), utcTime(options.notAfter ?? Date.now() + day)),
    name,
    [...new Uint8Array(await crypto.subtle.exportKey("spki", publicKey))],
  );
  const signature = new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", privateKey, new Uint8Array(tbs)));
  const der = sequence(tbs, algorithm, tlv(0x03, [0x00, ...signature]));
  const lines = Buffer.from(der).toString("base64").match(/.{1,64}/g)!;
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

function tlv(tag: number, content: number[]): number[] {
  const length = content.length;
  if (length < 0x80) return [tag, length, ...content];
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return [tag, 0x80 | bytes.length, ...bytes, ...content];
}

const sequence = (...parts: number[][]) => tlv(0x30, parts.flat());
const set = (...parts: number[][]) => tlv(0x31, parts.flat());
const utf8 = (text: string) => [...new TextEncoder().encode(text)];

// YYMMDDHHMMSSZ, valid for the years 1950 to 2049.
function utcTime(milliseconds: number): number[] {
  const iso = new Date(milliseconds).toISOString();
  // 2026-11-27T12:00:00.000Z -> 261127120000Z
  return tlv(0x17, utf8(`${iso.slice(2, 19).replace(/[-T:]/g, "")}Z`));
}
