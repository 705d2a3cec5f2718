// Concurrent egvs requests of one user whose Dexcom token has expired, spread over two real
// `npm run serve` processes sharing one database, against the fake Dexcom as a real HTTP server:
// Dexcom's refresh tokens are single use, so exactly one of them may refresh (contract,
// "dexcom-egvs"), whichever process it runs in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEXCOM_ENV, expireStoredToken, tokenRows } from "./support/dexcom-backend.ts";
import { type DexcomProcesses, type ProcessCaller, startDexcomProcesses } from "./support/dexcom-processes.ts";
import { egvSeries, type FakeUser } from "./support/fake-dexcom.ts";

const UID = "refresh-processes-uid";
const CONCURRENT = 20;
const WINDOW = "startDate=2026-11-28T10:00:00Z&endDate=2026-11-28T11:00:00Z";

let processes: DexcomProcesses;
let caller: ProcessCaller;
let dexcomUser: FakeUser;

beforeAll(async () => {
  processes = await startDexcomProcesses();
  dexcomUser = processes.dexcom.addUser();
  dexcomUser.egvs.push(...egvSeries(new Date("2026-11-28T10:00:00Z"), 12));
  // Registered on process 1, authorization started there, the browser comes back to process 2.
  caller = await processes.connect(UID, dexcomUser, 1);
}, 90_000);

afterAll(async () => {
  // Also when beforeAll failed after the processes started.
  await processes?.stop();
});

function activeRows(rows: Awaited<ReturnType<typeof tokenRows>>) {
  return rows.filter((row) => row.is_revoked !== true);
}

/**
 * Expires the stored token (and, as Dexcom would, every access token issued so far, so a request
 * that used the old one could not pass), fires the concurrent requests alternating between the two
 * processes, and checks that exactly one refresh happened and exactly one new row holds its pair.
 */
async function expiredRound(): Promise<void> {
  const { db } = processes.database;
  const { dexcom } = processes;
  const before = await tokenRows(db, UID);
  const [oldActive] = activeRows(before);
  expect(activeRows(before)).toHaveLength(1);

  await expireStoredToken(db, UID);
  for (const secret of dexcom.secretsIssued) dexcom.expireAccessToken(secret);
  const refreshesBefore = dexcom.counts.refresh;

  const answers = await Promise.all(
    Array.from({ length: CONCURRENT }, async (_, i) => {
      const response = await caller.send(i % 2, `dexcom-egvs?${WINDOW}`);
      return { status: response.status, text: await response.text() };
    }),
  );

  // Every caller gets Dexcom's body, passed through.
  const expected = { recordType: "egv", recordVersion: "3.0", userId: dexcomUser.dexcomUserId, records: dexcomUser.egvs };
  for (const answer of answers) {
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toEqual(expected);
  }

  // One refresh across both processes.
  expect(dexcom.counts.refresh - refreshesBefore).toBe(1);

  // Exactly one new row, the only active one; the old one revoked as refreshed.
  const after = await tokenRows(db, UID);
  expect(after).toHaveLength(before.length + 1);
  const active = activeRows(after);
  expect(active).toHaveLength(1);
  expect(active[0]!.id).not.toBe(oldActive!.id);
  expect(after.find((row) => row.id === oldActive!.id)).toMatchObject({ is_revoked: true, revoked_reason: "refreshed" });

  // Dexcom holds one live refresh token for the user: the one the new row stores.
  expect(dexcom.liveRefreshTokens(dexcomUser)).toHaveLength(1);
}

describe("an expired token, 20 concurrent egvs requests over two serve processes sharing the database", () => {
  it("refreshes exactly once, all 20 succeed, one new active row holds the new pair", async () => {
    await expiredRound();
  }, 45_000);

  it("holds again on a second expiry", async () => {
    await expiredRound();
  }, 45_000);

  it("neither process ever wrote a Dexcom token, code or the client secret to its output", () => {
    const { dexcom, servers } = processes;
    // Something was issued and something was written, so the check below looks at real text.
    expect(dexcom.secretsIssued.length).toBeGreaterThanOrEqual(5);
    for (const server of servers) {
      const output = server.output();
      expect(output.length).toBeGreaterThan(0);
      expect(output).not.toContain(DEXCOM_ENV.DEXCOM_CLIENT_SECRET);
      for (const secret of dexcom.secretsIssued) expect(output).not.toContain(secret);
    }
  });
});
