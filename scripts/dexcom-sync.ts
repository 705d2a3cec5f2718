import { loadEnvFile } from "../shared/local/env-file.ts";
import { runDexcomSync } from "../shared/tools/dexcom-sync-command.ts";

await loadEnvFile("dexcom:sync failed");

const encoder = new TextEncoder();
const progress = {
  isTTY: Deno.stderr.isTerminal(),
  write: (text: string) => void Deno.stderr.writeSync(encoder.encode(text)),
};

Deno.exit(await runDexcomSync(Deno.args, Deno.env.toObject(), { log: console.log, error: console.error, progress }));
