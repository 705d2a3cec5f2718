// Runs every benchmark in turn: `npm run bench` (deno run -A bench/main.ts); or the named ones:
// `npm run bench -- rotation http`.
import { benchDexcom } from "./dexcom.ts";
import { benchFernet } from "./fernet.ts";
import { benchGlucose } from "./glucose.ts";
import { benchHttp } from "./http.ts";
import { benchRotation } from "./rotation.ts";
import { benchStartup } from "./startup.ts";

const BENCHES: Record<string, () => Promise<void>> = {
  fernet: benchFernet,
  rotation: benchRotation,
  http: benchHttp,
  startup: benchStartup,
  dexcom: benchDexcom,
  glucose: benchGlucose,
};

const unknown = Deno.args.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  console.error(`bench: no benchmark ${unknown.join(", ")}; the benchmarks: ${Object.keys(BENCHES).join(", ")}`);
  Deno.exit(2);
}
for (const name of Deno.args.length > 0 ? Deno.args : Object.keys(BENCHES)) await BENCHES[name]!();
