// `npm start`: the whole backend offline: embedded Postgres (or DATABASE_URL), migrations, the
// Firebase Auth emulator, and every function at http://127.0.0.1:54321/functions/v1/<name>.
import { describeTarget } from "../shared/db/open.ts";
import { LocalStackError } from "../shared/local/errors.ts";
import { HOST, type LocalStack, startLocalStack } from "../shared/local/stack.ts";

const started = performance.now();
let stack: LocalStack;
try {
  stack = await startLocalStack(Deno.env.toObject());
} catch (error) {
  if (!(error instanceof LocalStackError)) throw error;
  console.error(`npm start: ${error.message}`);
  Deno.exit(1);
}

const http = Deno.serve({ hostname: HOST, port: stack.port, onListen: () => {} }, stack.handler);
const origin = `http://${HOST}:${stack.port}`;
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
for (const notice of stack.notices) console.error(notice);
console.error([
  `functions ready in ${seconds()} s, on ${describeTarget(stack.database)}:`,
  ...stack.banner(origin),
].join("\n"));

try {
  const emulator = await stack.emulator;
  console.error([
    `Firebase Auth emulator ready at http://${emulator.address} (project ${stack.deps.config.firebase?.projectId})`,
    `DMS backend ready in ${seconds()} s`,
    "  get an ID token: npm run dev:token -- you@example.com",
    `  then: curl -X POST -H "Authorization: Bearer <token>" ${origin}/functions/v1/users`,
  ].join("\n"));
} catch (error) {
  if (!(error instanceof LocalStackError)) throw error;
  console.error(`npm start: ${error.message}`);
  await http.shutdown();
  await stack.close();
  Deno.exit(1);
}

// Stop accepting, let requests in flight finish, close the database (nothing lost), stop the emulator.
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.error("stopping...");
  await http.shutdown();
  await stack.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
