import { startFunction } from "../../shared/app/start-function.ts";

// Supabase's edge runtime keeps the function alive for the first sync after the redirect.
const edgeRuntime = (globalThis as { EdgeRuntime?: { waitUntil(task: Promise<unknown>): void } }).EdgeRuntime;

await startFunction("dexcom-oauth", {
  env: Deno.env.toObject(),
  serve: Deno.serve,
  exit: Deno.exit,
  waitUntil: edgeRuntime ? (task) => edgeRuntime.waitUntil(task) : undefined,
});
