// `npm start`: the whole backend offline: embedded Postgres (or DATABASE_URL), migrations, the
// Firebase Auth emulator, and every function at http://127.0.0.1:54321/functions/v1/<name>.
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describeTarget } from "../shared/db/open.ts";
import { loadEnvFile } from "../shared/local/env-file.ts";
import { LocalStackError, StoppedWhileStarting } from "../shared/local/errors.ts";
import { startReloader } from "../shared/local/reloader.ts";
import { DEFAULT_EMULATOR_HOST, HOST, startLocalStack } from "../shared/local/stack.ts";
import { loadConfig } from "../shared/app/config.ts";

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

// --watch: the functions are reloaded when a file under functions/ or shared/ changes.
const watching = Deno.args.includes("--watch");
const unknownArgs = Deno.args.filter((arg) => arg !== "--watch");
if (unknownArgs.length > 0) {
  console.error(`npm start: unknown option ${unknownArgs.join(" ")} (the one option: --watch, as in npm start -- --watch)`);
  Deno.exit(2);
}

await loadEnvFile("npm start");
const stack = await startLocalStack(Deno.env.toObject(), starting.signal, watching ? reloaded : undefined).catch(fail);
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
console.error([
  `functions ready in ${seconds()} s, on ${describeTarget(stack.database)}:`,
  ...stack.banner(origin),
  ...(stack.databaseUrl ? [`database open to Postgres clients (psql, pg_dump, supabase --db-url) at ${stack.databaseUrl}`] : []),
  // The Supabase CLI asks for TLS on any port but the one it knows as local (54322); ours has none.
  ...(stack.databaseUrl && !stack.databaseUrl.includes(":54322/") ? ["  (for the Supabase CLI, add ?sslmode=disable)"] : []),
].join("\n"));

const emulator = await stack.emulator.catch(async (error) => {
  if (stopping) await stopping; // stopped as asked, the emulator with it: exits 0
  await http.shutdown();
  await stack.close();
  return fail(error);
});
console.error([
  `Firebase Auth emulator ready at http://${emulator.address} (project ${stack.projectId})`,
  `DMS backend ready in ${seconds()} s`,
  // dev:token finds the emulator where npm start put it only when told, unless it is at the default.
  `  get an ID token: ${emulator.address === DEFAULT_EMULATOR_HOST ? "" : `FIREBASE_AUTH_EMULATOR_HOST=${emulator.address} `}npm run dev:token -- you@example.com`,
  `  then: curl -X POST -H "Authorization: Bearer <token>" ${origin}/functions/v1/users`,
].join("\n"));

/** The functions in a process of their own (scripts/serve.ts), a new one whenever the source changes. */
async function reloaded(env: Record<string, string | undefined>) {
  // Refused here, before a process is started: the stack turns a ConfigError into its one line.
  await loadConfig(env, { firebase: true, encryption: true });
  const root = fileURLToPath(new URL("..", import.meta.url));
  const reloader = await startReloader({
    command: [Deno.execPath(), "run", "-A", "--quiet", join(root, "scripts", "serve.ts")],
    cwd: root,
    env,
    watch: (onChange) => {
      const watcher = Deno.watchFs([join(root, "functions"), join(root, "shared")], { recursive: true });
      (async () => {
        for await (const event of watcher) onChange(event.paths.map((path) => relative(root, path)));
      })().catch(() => {}); // closed
      return () => watcher.close();
    },
    say: (line) => console.error(line),
  });
  console.error("watching functions/ and shared/: the functions reload when a file changes");
  return reloader;
}
