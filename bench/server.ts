// What the HTTP benches share to run the server as a person does: RS256 ID tokens as Firebase
// issues them, with the key set served over real HTTP for the server to verify them by, and
// `npm run serve`'s script in its own process until the bench's work is done.
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { freePort } from "../shared/local/ports.ts";
import { untilAnswers } from "../shared/local/until-answers.ts";
import { withChild } from "./child.ts";

export const PROJECT_ID = "dms-bench";

/** A fresh ID token for a Firebase uid. */
export type IdTokens = (sub: string) => Promise<string>;

export interface IdTokenIssuer {
  idToken: IdTokens;
  /** Where the key set that verifies the tokens is served. */
  jwksUrl: string;
  /** FIREBASE_PROJECT_ID and FIREBASE_JWKS_URL, for the server. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A new RS256 signing key, its key set served on a free local port, and ID tokens signed with it. */
export async function startIdTokens(): Promise<IdTokenIssuer> {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const kid = "bench-key";
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" }] };
  const idToken = (sub: string) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ auth_time: now, email: `${sub}@example.com`, email_verified: true })
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer(`https://securetoken.google.com/${PROJECT_ID}`)
      .setAudience(PROJECT_ID)
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () =>
    Response.json(jwks, { headers: { "cache-control": "public, max-age=3600" } }));
  const jwksUrl = `http://127.0.0.1:${server.addr.port}/jwks`;
  return {
    idToken,
    jwksUrl,
    env: { FIREBASE_PROJECT_ID: PROJECT_ID, FIREBASE_JWKS_URL: jwksUrl },
    close: () => server.shutdown(),
  };
}

/** The bare reference handler (bare-server.ts), for withServer's `script`. */
export const BARE_SERVER = new URL("./bare-server.ts", import.meta.url).pathname;

export interface ServerOptions {
  /** The entry file run; default `npm run serve`'s, scripts/serve.ts. */
  script?: string;
  /** Flags for `deno run` before the script, such as `--cpu-prof`. */
  denoFlags?: string[];
}

/**
 * Runs `npm run serve`'s script (or options.script) with env (and a free PORT) until work is done;
 * work gets the server's origin once /health answers, and its process id. A server that stops
 * while starting fails with its stderr.
 */
export async function withServer(
  env: Record<string, string>,
  work: (base: string, pid: number) => Promise<void>,
  options: ServerOptions = {},
): Promise<void> {
  const port = await freePort();
  const script = options.script ?? new URL("../scripts/serve.ts", import.meta.url).pathname;
  const serve = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", ...(options.denoFlags ?? []), script],
    env: { ...env, PORT: String(port) },
    stdout: "null",
    stderr: "piped",
  });
  let serverErrors: ReadableStreamDefaultReader<string> | undefined;
  try {
    await withChild(serve, async (server) => {
      serverErrors = server.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let exited = false;
      server.status.then(() => (exited = true));
      const base = `http://127.0.0.1:${port}`;
      await untilAnswers(`${base}/functions/v1/health`, {
        timeoutMs: 10_000,
        giveUp: () => (exited ? new Error("the server stopped while starting") : null),
        timedOut: () => new Error(`the server did not come up at ${base}`),
      }).catch(async (error) => {
        const { value } = exited ? await serverErrors!.read() : { value: "" };
        throw new Error(`${error.message}: ${value ?? ""}`);
      });
      await work(base, server.pid);
    });
  } finally {
    await serverErrors?.cancel(); // only once the server is gone: it may still write to stderr until then
  }
}
