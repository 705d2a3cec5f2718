// `npm run serve`: every function at http://127.0.0.1:${PORT:-54321}/functions/v1/<name>.
import { buildLocalServer, ConfigError } from "../shared/app/server.ts";
import { describeTarget } from "../shared/db/open.ts";
import { loadEnvFile } from "../shared/local/env-file.ts";
import { SERVING } from "../shared/local/reloader.ts";

await loadEnvFile("serve");

let server;
try {
  server = await buildLocalServer(Deno.env.toObject());
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  for (const problem of error.problems) console.error(`serve: ${problem}`);
  Deno.exit(1);
}
const { deps, handler, banner } = server;
const http = Deno.serve({
  hostname: "127.0.0.1",
  port: deps.config.port,
  onListen: ({ hostname, port }) => {
    console.error(`${SERVING} ${describeTarget(deps.config.database)}:`);
    for (const line of banner(`http://${hostname}:${port}`)) console.error(line);
  },
}, handler);

// Finish the requests in flight, then close the database, so nothing is cut off half-way; a second
// Ctrl-C while that happens must not close it twice.
let stopping: Promise<void> | undefined;
const stop = () => {
  stopping ??= (async () => {
    await http.shutdown();
    await deps.db.close();
    Deno.exit(0);
  })();
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

// `npm start -- --watch` runs us as its functions process (and sets this): we must not outlive it,
// even when it is killed hard and cannot stop us. Deno.ppid is read afresh on each call.
if (Deno.env.get("DMS_STOP_WITH_PARENT") === "1") {
  const parent = Deno.ppid;
  Deno.unrefTimer(setInterval(() => Deno.ppid !== parent && stop(), 500));
}
