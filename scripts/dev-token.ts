// `npm run dev:token -- <email>`: an ID token from the running Firebase Auth emulator, for curl.
import { devToken } from "../shared/local/dev-token.ts";
import { loadEnvFile } from "../shared/local/env-file.ts";
import { LocalStackError } from "../shared/local/errors.ts";
import { DEFAULT_EMULATOR_HOST } from "../shared/local/stack.ts";

const email = Deno.args[0];
if (!email || Deno.args.length > 1) {
  console.error("usage: npm run dev:token -- <email>");
  Deno.exit(2);
}
// FIREBASE_AUTH_EMULATOR_HOST may be in .env, as for the `npm start` it talks to.
await loadEnvFile("dev:token");
try {
  console.log(await devToken(email, Deno.env.get("FIREBASE_AUTH_EMULATOR_HOST") || DEFAULT_EMULATOR_HOST));
} catch (error) {
  if (!(error instanceof LocalStackError)) throw error;
  console.error(`dev:token: ${error.message}`);
  Deno.exit(1);
}
