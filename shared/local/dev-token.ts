import { LocalStackError } from "./errors.ts";

// Every development account shares this password; the emulator is local and its users are not real.
const DEV_PASSWORD = "dms-development-password";
// An emulator that takes the connection and never answers must not hang the command.
const EMULATOR_TIMEOUT_MS = 10_000;

/**
 * A Firebase ID token from the running Auth emulator for this email: the account is created on
 * first use and signed in after that.
 */
export async function devToken(email: string, emulatorHost: string): Promise<string> {
  const call = async (method: string) => {
    try {
      return await fetch(`http://${emulatorHost}/identitytoolkit.googleapis.com/v1/accounts:${method}?key=dev`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password: DEV_PASSWORD, returnSecureToken: true }),
        signal: AbortSignal.timeout(EMULATOR_TIMEOUT_MS),
      });
    } catch {
      throw new LocalStackError(`cannot reach the Firebase Auth emulator at ${emulatorHost}: is npm start running?`);
    }
  };
  let response = await call("signUp");
  let body = await response.json() as { idToken?: string; error?: { message?: string } };
  if (body.error?.message === "EMAIL_EXISTS") {
    response = await call("signInWithPassword");
    body = await response.json() as typeof body;
  }
  if (!response.ok || !body.idToken) {
    throw new LocalStackError(`the Firebase Auth emulator refused ${email}: ${body.error?.message ?? response.status}`);
  }
  return body.idToken;
}
