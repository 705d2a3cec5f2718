// Runs every benchmark in turn: `npm run bench` (deno run -A bench/main.ts); or the named ones:
// `npm run bench -- rotation http`. Those in ON_REQUEST run only when named.
import { benchDexcom } from "./dexcom.ts";
import { benchFernet } from "./fernet.ts";
import { benchGlucose } from "./glucose.ts";
import { benchHttp } from "./http.ts";
import { benchPool } from "./pool.ts";
import { benchProfile } from "./profile.ts";
import { benchRotation } from "./rotation.ts";
import { benchStartup } from "./startup.ts";

const BENCHES: Record<string, () => Promise<void>> = {
  fernet: benchFernet,
  rotation: benchRotation,
  http: benchHttp,
  startup: benchStartup,
  dexcom: benchDexcom,
  glucose: benchGlucose,
  pool: benchPool,
};

// A CPU profile of the server under the HTTP load: for finding where the time goes, not a figure.
const ON_REQUEST: Record<string, () => Promise<void>> = {
  profile: benchProfile,
};
const ALL = { ...BENCHES, ...ON_REQUEST };

const unknown = Deno.args.filter((name) => !(name in ALL));
if (unknown.length > 0) {
  console.error(`bench: no benchmark ${unknown.join(", ")}; the benchmarks: ${Object.keys(ALL).join(", ")}`);
  Deno.exit(2);
}
for (const name of Deno.args.length > 0 ? Deno.args : Object.keys(BENCHES)) await ALL[name]!();
