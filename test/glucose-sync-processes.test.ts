// Concurrent POST /dexcom-sync of one user spread over two real `npm run serve` processes sharing
// one database, against the fake Dexcom as a real HTTP server: one sync per user runs at a time
// across every process (contract, "glucose history"), so ten requests make one sync's worth of
// Dexcom calls, and every caller gets that sync's result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstSyncDone, userIdOf } from "./support/dexcom-backend.ts";
import { type DexcomProcesses, type ProcessCaller, startDexcomProcesses } from "./support/dexcom-processes.ts";
import { egvSeries, type FakeUser } from "./support/fake-dexcom.ts";

const UID = "sync-processes-uid";
const CONCURRENT = 10;
const MINUTE = 60_000;

let processes: DexcomProcesses;
let caller: ProcessCaller;
let dexcomUser: FakeUser;
let userId: number;

/** Now, on the 5-minute grid, so that series of readings line up with it. */
const gridNow = () => Math.floor(Date.now() / (5 * MINUTE)) * 5 * MINUTE;

beforeAll(async () => {
  processes = await startDexcomProcesses();
  // Registered and connected on process 1, when Dexcom holds two hours of readings (from 4 h to 2 h ago).
  dexcomUser = processes.dexcom.addUser();
  dexcomUser.egvs.push(...egvSeries(new Date(gridNow() - 4 * 60 * MINUTE), 24));
  caller = await processes.connect(UID, dexcomUser, 0);
  // The first sync runs in the background of process 1 after the redirect.
  await firstSyncDone(processes.database.db, UID);
  userId = await userIdOf(processes.database.db, UID);
}, 90_000);

afterAll(async () => {
  // Also when beforeAll failed after the processes started.
  await processes?.stop();
});

async function storedCount(): Promise<number> {
  const [row] = await processes.database.db.query<{ n: number }>("SELECT count(*)::int AS n FROM glucose_readings WHERE user_id = $1", [userId]);
  return row!.n;
}

describe("10 concurrent POST /dexcom-sync of one user over two serve processes sharing the database", () => {
  it("one sync's worth of Dexcom calls in all; all 10 answer 200 with that sync's result", async () => {
    expect(await storedCount()).toBe(24);
    // Twenty readings arrived at Dexcom since the first sync (the newest 25 minutes ago).
    const newest = Date.parse(`${dexcomUser.egvs.at(-1)!.systemTime}Z`);
    const added = egvSeries(new Date(newest + 5 * MINUTE), 20);
    dexcomUser.egvs.push(...added);
    // The last sync looks two minutes old, so the requests are not answered too_soon.
    await processes.database.db.query("UPDATE dexcom_sync_state SET synced_at = synced_at - interval '2 minutes' WHERE user_id = $1", [userId]);
    // Dexcom takes a second to answer, so that the other requests arrive while the sync runs.
    const { dexcom } = processes;
    dexcom.failNext("egvs", { kind: "delay", ms: 1000 });
    const before = { ...dexcom.counts };

    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, async (_, i) => {
        const response = await caller.send(i % 2, "dexcom-sync", { method: "POST" });
        return { status: response.status, text: await response.text() };
      }),
    );

    for (const answer of answers) expect(answer.status, answer.text).toBe(200);
    // A later sync is one egvs window (an hour before the newest stored reading to now), no dataRange
    // and, the token being fresh, no token call.
    expect(dexcom.counts.egvs - before.egvs).toBe(1);
    expect(dexcom.counts.dataRange - before.dataRange).toBe(0);
    expect(dexcom.counts.token - before.token).toBe(0);
    const results = answers.map((answer) => (JSON.parse(answer.text) as { sync: Record<string, unknown> }).sync);
    for (const result of results) {
      expect(result).toMatchObject({
        new_readings: 20,
        newest_reading_at: new Date(Date.parse(`${added.at(-1)!.systemTime}Z`)).toISOString(),
      });
    }
    expect(new Set(results.map((result) => result.synced_at)).size).toBe(1);
    expect(await storedCount()).toBe(44);
  }, 45_000);
});
