// `npm start`: the whole backend offline: embedded Postgres (or DATABASE_URL), migrations, the
// Firebase Auth emulator, and every function at http://127.0.0.1:54321/functions/v1/<name>.
import { describeTarget } from "../shared/db/open.ts";
import { loadEnvFile } from "../shared/local/env-file.ts";
import { LocalStackError, StoppedWhileStarting } from "../shared/local/errors.ts";
import { HOST, startLocalStack } from "../shared/local/stack.ts";

const PARENT_CHECK_MS = 500;
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);

// Ctrl-C or SIGTERM: stop accepting, let requests in flight finish, close the database (nothing
// lost, the data directory unlocked), stop the emulator. While starting, at once: whatever it waits
// for (migrations behind another session's lock, a slow server) is abandoned, what it started is
// stopped, and it exits 0 within seconds (stopped as asked).
const starting = new AbortController();
let stop = () => {
  if (starting.signal.aborted) return;
  console.error("stopping...");
  starting.abort();
};
Deno.addSignalListener("SIGINT", () => stop());
Deno.addSignalListener("SIGTERM", () => stop());
// The same when npm, which started us, is gone (killed hard, so it could not pass a signal on): the
// kernel then gives us another parent. We must not live on unseen, holding the ports and the data
// directory. Deno.ppid is read afresh on each call; a recycled pid cannot fool this comparison.
const parent = Deno.ppid;
Deno.unrefTimer(setInterval(() => Deno.ppid !== parent && stop(), PARENT_CHECK_MS));

const fail = (error: unknown): never => {
  if (error instanceof StoppedWhileStarting) Deno.exit(0); // everything it started is stopped
  if (!(error instanceof LocalStackError)) throw error;
  console.error(`npm start: ${error.message}`);
  Deno.exit(1);
};

await loadEnvFile("npm start");
const stack = await startLocalStack(Deno.env.toObject(), starting.signal).catch(fail);
const http = Deno.serve({ hostname: HOST, port: stack.port, onListen: () => {} }, stack.handler);
let stopping: Promise<void> | undefined;
stop = () => {
  stopping ??= (async () => {
    if (!starting.signal.aborted) console.error("stopping...");
    await http.shutdown();
    await stack.close();
    Deno.exit(0);
  })();
};
if (starting.signal.aborted) {
  stop();
  await stopping; // exits
}

const origin = `http://${HOST}:${stack.port}`;
for (const notice of stack.notices) console.error(notice);
console.error([`functions ready in ${seconds()} s, on ${describeTarget(stack.database)}:`, ...stack.banner(origin)].join("\n"));

const emulator = await stack.emulator.catch(async (error) => {
  if (stopping) await stopping; // stopped as asked, the emulator with it: exits 0
  await http.shutdown();
  await stack.close();
  return fail(error);
});
console.error([
  `Firebase Auth emulator ready at http://${emulator.address} (project ${stack.deps.config.firebase?.projectId})`,
  `DMS backend ready in ${seconds()} s`,
  "  get an ID token: npm run dev:token -- you@example.com",
  `  then: curl -X POST -H "Authorization: Bearer <token>" ${origin}/functions/v1/users`,
].join("\n"));
