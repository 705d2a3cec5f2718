import { loadEnvFile } from "../shared/local/env-file.ts";
import { runKeysRotate } from "../shared/tools/keys-rotate-command.ts";

await loadEnvFile("keys:rotate failed");

const encoder = new TextEncoder();
const progress = {
  isTTY: Deno.stderr.isTerminal(),
  write: (text: string) => void Deno.stderr.writeSync(encoder.encode(text)),
};

Deno.exit(await runKeysRotate(Deno.args, Deno.env.toObject(), { log: console.log, error: console.error, progress }));
