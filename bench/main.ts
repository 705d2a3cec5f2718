// Runs every benchmark in turn: `npm run bench` (deno run -A bench/main.ts).
import { benchFernet } from "./fernet.ts";
import { benchHttp } from "./http.ts";
import { benchRotation } from "./rotation.ts";
import { benchStartup } from "./startup.ts";

await benchFernet();
await benchRotation();
await benchHttp();
await benchStartup();
