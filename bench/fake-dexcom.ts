// The fake Dexcom (test/support/fake-dexcom.ts) as the Dexcom benches use it: the client the
// server is configured with, and users connected the way an app that did the OAuth itself does.
import { FakeDexcom, type FakeUser } from "../test/support/fake-dexcom.ts";
import type { IdTokens } from "./server.ts";

/** The DEXCOM_* variables of the server under bench, but DEXCOM_API_BASE_URL (the fake's address). */
export const BENCH_DEXCOM_ENV = {
  DEXCOM_CLIENT_ID: "bench-client-id",
  DEXCOM_CLIENT_SECRET: "bench-client-secret",
  DEXCOM_REDIRECT_URI: "http://127.0.0.1:54321/functions/v1/dexcom-oauth/callback",
  DEXCOM_APP_REDIRECT_URL: "dms://dexcom-connected",
};

/** A fake Dexcom that knows the bench's client. */
export function benchFakeDexcom(): FakeDexcom {
  return new FakeDexcom({
    clientId: BENCH_DEXCOM_ENV.DEXCOM_CLIENT_ID,
    clientSecret: BENCH_DEXCOM_ENV.DEXCOM_CLIENT_SECRET,
    redirectUri: BENCH_DEXCOM_ENV.DEXCOM_REDIRECT_URI,
  });
}

/** A connected user: the ID token we take and the Dexcom access token the fake takes. */
export interface Connected {
  idToken: string;
  accessToken: string;
}

/**
 * Registers uid (POST /users) and stores a pair the fake issued for the Dexcom account `user`
 * through POST /dexcom-tokens. `bench` names the bench in the error when either is refused.
 */
export async function connectWithPair(
  base: string,
  dexcom: FakeDexcom,
  idToken: IdTokens,
  uid: string,
  user: FakeUser,
  bench: string,
): Promise<Connected> {
  const token = await idToken(uid);
  const headers = { authorization: `Bearer ${token}` };
  const registered = await fetch(`${base}/functions/v1/users`, { method: "POST", headers });
  await registered.body?.cancel();
  const pair = dexcom.issuePair(user);
  const stored = await fetch(`${base}/functions/v1/dexcom-tokens`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ ...pair, dexcom_user_id: user.dexcomUserId }),
  });
  await stored.body?.cancel();
  if ((registered.status !== 201 && registered.status !== 200) || stored.status !== 201) {
    throw new Error(`${bench} bench: connecting ${uid}: POST /users answered ${registered.status}, POST /dexcom-tokens ${stored.status}`);
  }
  return { idToken: token, accessToken: pair.access_token };
}
