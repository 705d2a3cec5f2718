// A shared secret sent as `Authorization: Bearer <secret>` (a scheduler's call), compared in
// constant time: the SHA-256 of each side, so neither the length nor a common prefix shows in the
// time the comparison takes.
import { bearerCredential } from "./auth.ts";

export async function bearerMatches(request: Request, secret: string): Promise<boolean> {
  const given = bearerCredential(request.headers.get("authorization")) ?? "";
  const [a, b] = await Promise.all([digest(given), digest(secret)]);
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0 && given !== "";
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}
