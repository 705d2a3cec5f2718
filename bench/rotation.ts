// `keys:rotate` over 100,000 token rows under an old key, on a database of its own on the local
// Postgres: the time it takes, and the process's memory, which must stay flat however many rows.
import { encrypt, generateKey, importFernetKey } from "../shared/crypto/fernet.ts";
import { loadKeyRing } from "../shared/crypto/key-ring.ts";
import type { Database } from "../shared/db/database.ts";
import { DEFAULT_BATCH_SIZE, rotateTokens } from "../shared/tools/keys-rotate.ts";
import { withScratchDatabase } from "./scratch-database.ts";

const ROWS = 100_000;
// Sizes like Dexcom's: a long access token, a short refresh token.
const ACCESS_BYTES = 1024;
const REFRESH_BYTES = 64;
// A few distinct ciphertexts, reused: seeding is not what is measured.
const DISTINCT_TOKENS = 16;
const RSS_SAMPLE_MS = 20;
const GOAL_SECONDS = 30;

export function benchRotation(): Promise<void> {
  return withScratchDatabase("key rotation", ({ db }) => run(db));
}

async function run(db: Database): Promise<void> {
  const oldKey = generateKey();
  const ring = await loadKeyRing({ ENCRYPTION_KEY: generateKey(), PREVIOUS_ENCRYPTION_KEYS: oldKey });
  await seed(db, oldKey);

  const rssBefore = Deno.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), RSS_SAMPLE_MS);
  // The RSS at each quarter of the work shows whether memory grows with the rows done.
  const quarters: number[] = [];
  const start = performance.now();
  const summary = await rotateTokens(db, ring, {
    batchSize: DEFAULT_BATCH_SIZE,
    dryRun: false,
    onProgress: ({ done, total }) => {
      if (done >= ((quarters.length + 1) / 4) * total) quarters.push(Deno.memoryUsage().rss);
    },
  }).finally(() => clearInterval(sampler));
  const seconds = (performance.now() - start) / 1000;
  const rssAfter = Deno.memoryUsage().rss;
  if (summary.rotated !== ROWS) throw new Error(`rotation bench: rotated ${summary.rotated} of ${ROWS} rows`);

  console.log(
    `key rotation, ${ROWS.toLocaleString("en-US")} rows under an old key ` +
      `(${ACCESS_BYTES} B access + ${REFRESH_BYTES} B refresh token), batch size ${DEFAULT_BATCH_SIZE}`,
  );
  const rate = Math.round(ROWS / seconds).toLocaleString("en-US");
  line("time", `${seconds.toFixed(1)} s, ${rate} rows/s (goal: under ${GOAL_SECONDS} s)`);
  line("RSS before / peak during / after", [rssBefore, peak, rssAfter].map(mb).join(" / "));
  line("RSS at 25% / 50% / 75% / 100% done", quarters.map(mb).join(" / "));
}

async function seed(db: Database, keyText: string): Promise<void> {
  const key = await importFernetKey(keyText);
  const random = (bytes: number) => crypto.getRandomValues(new Uint8Array(bytes));
  const pairs = await Promise.all(
    Array.from({ length: DISTINCT_TOKENS }, async () => [
      await encrypt(key, random(ACCESS_BYTES)),
      await encrypt(key, random(REFRESH_BYTES)),
    ]),
  );
  await db.query(
    `INSERT INTO public.dexcom_tokens
       (access_token_encrypted, refresh_token_encrypted, encryption_key_id, expires_in, expires_at)
     SELECT p -> (g % $3) ->> 0, p -> (g % $3) ->> 1, $2, 7200, now() + interval '2 hours'
       FROM generate_series(1, $4::int) AS g, (SELECT $1::text::jsonb AS p) AS tokens`,
    [JSON.stringify(pairs), key.id, DISTINCT_TOKENS, ROWS],
  );
  await db.exec("VACUUM ANALYZE public.dexcom_tokens");
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(42)}${value}`);
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MB`;
}
