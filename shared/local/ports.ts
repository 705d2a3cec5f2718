import { createServer } from "node:net";
import { LocalStackError } from "./errors.ts";

/** Fails with one clear line when host:port is taken, before anything slow starts. */
export function assertPortFree(host: string, port: number, what: string, variable: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => reject(cannotListen(error, host, port, what, variable)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** The one line for a listen that failed: a port taken names the variable that moves it. */
export function cannotListen(error: NodeJS.ErrnoException, host: string, port: number, what: string, variable: string): LocalStackError {
  return new LocalStackError(
    error.code === "EADDRINUSE"
      ? `${host}:${port} is already in use, so ${what} cannot start (another npm start or supabase start?); set ${variable} to use another port`
      : `${what} cannot listen on ${host}:${port} (${error.code ?? error.message})`,
  );
}

/** A port nobody listens on right now. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
