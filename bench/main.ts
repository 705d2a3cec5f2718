// Runs every benchmark in turn: `npm run bench` (deno run -A bench/main.ts).
import { benchFernet } from "./fernet.ts";

await benchFernet();
