// `npm run dexcom:sync` (contract, section 2) as an operator runs it: a real process on a migrated
// test database, with the fake Dexcom served over real HTTP. The users are connected through an
// in-process backend on the same database (POST /dexcom-tokens with pairs the same fake issued),
// so the command decrypts what the backend encrypted with the same ENCRYPTION_KEY.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Queryable } from "../shared/db/database.ts";
import { registeredCaller } from "./support/contract-helpers.ts";
import { DEXCOM_ENV, type DexcomBackend, startDexcomBackend } from "./support/dexcom-backend.ts";
import { type EgvRecord, egvSeries } from "./support/fake-dexcom.ts";
import { npmRun, type RunResult } from "./support/run.ts";

const MINUTE = 60_000;
const PROGRESS = /^users (\d+), new readings (\d+), failed (\d+)$/;

let backend: DexcomBackend;
let dexcomServer: { url: string; close(): Promise<void> } | undefined;
const db = () => backend.database.db;

beforeAll(async () => {
  backend = await startDexcomBackend();
  // The same fake, reachable from another process.
  dexcomServer = await backend.dexcom.listen();
});

afterAll(async () => {
  await dexcomServer?.close();
  await backend?.close();
});

/** Every variable the command needs, pointing at this file's database and fake Dexcom; overrides (undefined removes). */
function commandEnv(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    DATABASE_URL: backend.database.url,
    ENCRYPTION_KEY: backend.encryptionKey,
    ...DEXCOM_ENV,
    DEXCOM_API_BASE_URL: dexcomServer!.url,
    ...overrides,
  };
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** Without the DEXCOM_* variables at all (cleanEnv keeps the parent's others; the parent sets none of these). */
const WITHOUT_DEXCOM = Object.fromEntries(Object.keys(DEXCOM_ENV).map((name) => [name, undefined]));

const sync = (args: string[] = [], overrides: Record<string, string | undefined> = {}) =>
  npmRun("dexcom:sync", args, commandEnv(overrides));

const lines = (text: string) => text.split("\n").filter((line) => line !== "");

/** Nothing secret anywhere in what the command printed: Dexcom's tokens, the client secret, the key. */
function expectNoSecrets(result: RunResult): void {
  const output = result.stdout + result.stderr;
  expect(backend.dexcom.secretsIssued.length).toBeGreaterThan(0);
  for (const secret of backend.dexcom.secretsIssued) expect(output).not.toContain(secret);
  expect(output).not.toContain(DEXCOM_ENV.DEXCOM_CLIENT_SECRET);
  expect(output).not.toContain(backend.encryptionKey);
}

/** A caller connected by POST /dexcom-tokens: due, never synced. Their user id. */
async function connectedUser(uid: string, records: EgvRecord[]): Promise<number> {
  const token = await registeredCaller(backend, uid);
  const user = backend.dexcom.addUser();
  user.egvs.push(...records);
  const pair = backend.dexcom.issuePair(user);
  const stored = await backend.call("dexcom-tokens", { method: "POST", token, json: { ...pair, dexcom_user_id: user.dexcomUserId } });
  expect(stored.status, stored.text).toBe(201);
  const [row] = await db().query<{ id: number }>("SELECT id FROM users WHERE firebase_uid = $1", [uid]);
  return row!.id;
}

/** Readings every 5 minutes, the last an hour ago: inside a first sync's window. */
const recentSeries = (count: number) => egvSeries(new Date(Date.now() - MINUTE * (60 + 5 * count)), count);

async function readingCount(userId: number): Promise<number> {
  const [row] = await db().query<{ n: number }>("SELECT count(*)::int AS n FROM glucose_readings WHERE user_id = $1", [userId]);
  return row!.n;
}

async function attempted(userId: number): Promise<boolean> {
  const [row] = await db().query<{ at: Date | null }>("SELECT last_attempt_at AS at FROM dexcom_sync_state WHERE user_id = $1", [userId]);
  return row?.at != null;
}

/** Every user so far made not due for a day, so that each test sees only its own due users. */
async function parkEveryone(database: Queryable): Promise<void> {
  await database.query(
    `INSERT INTO dexcom_sync_state (user_id, next_due_at) SELECT id, now() + interval '1 day' FROM users
     ON CONFLICT (user_id) DO UPDATE SET next_due_at = excluded.next_due_at`,
  );
}

const dexcomCalls = () => backend.dexcom.counts.token + backend.dexcom.counts.dataRange + backend.dexcom.counts.egvs;

describe("npm run dexcom:sync", () => {
  beforeEach(() => parkEveryone(db()));

  it("syncs every due user, shows its progress line by line and prints a summary", async () => {
    const users = [
      await connectedUser("command-user-1", recentSeries(12)),
      await connectedUser("command-user-2", recentSeries(12)),
      await connectedUser("command-user-3", recentSeries(5)),
    ];

    const result = await sync();
    expect(result.code, result.stderr).toBe(0);
    expect(lines(result.stdout)).toHaveLength(1);
    expect(result.stdout).toMatch(/^synced 3 users: 29 new readings, 0 failed, 0 deferred\b.*\n$/);

    // stderr is no terminal: one plain line per user, no carriage returns, ending at the totals.
    expect(result.stderr).not.toContain("\r");
    const progress = lines(result.stderr);
    expect(progress).toHaveLength(3);
    for (const line of progress) expect(line).toMatch(PROGRESS);
    expect(progress.map((line) => Number(PROGRESS.exec(line)![1]))).toEqual([1, 2, 3]);
    expect(progress.at(-1)).toBe("users 3, new readings 29, failed 0");
    expectNoSecrets(result);

    expect(await readingCount(users[0]!)).toBe(12);
    expect(await readingCount(users[1]!)).toBe(12);
    expect(await readingCount(users[2]!)).toBe(5);

    // Run again at once: nobody is due any more.
    const again = await sync();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^synced 0 users: 0 new readings, 0 failed, 0 deferred\b/);
    expect(again.stderr).toBe("");
  });

  it("exits 1 when a user's sync failed, and says so in the summary", async () => {
    const ok = await connectedUser("command-ok", recentSeries(4));
    const failing = await connectedUser("command-failing", recentSeries(4));
    // Only these two are due; the failing one's dataRange answers 503. Which of the two asks first
    // is not fixed, so the fault goes to whichever does: one fails, the other syncs.
    backend.dexcom.failNext("dataRange", { kind: "status", status: 503, body: "upstream down" });
    const dataRangeBefore = backend.dexcom.counts.dataRange;

    const result = await sync();
    expect(result.code, result.stderr).toBe(1);
    expect(backend.dexcom.counts.dataRange - dataRangeBefore).toBe(2);
    expect(result.stdout).toMatch(/^synced 2 users: 4 new readings, 1 failed, 0 deferred\b.*\n$/);
    const progress = lines(result.stderr).filter((line) => PROGRESS.test(line));
    expect(progress.at(-1)).toBe("users 2, new readings 4, failed 1");
    expectNoSecrets(result);
    expect((await readingCount(ok)) + (await readingCount(failing))).toBe(4);
  });

  describe("refuses to run", () => {
    let waiting: number;
    beforeEach(async () => {
      waiting = await connectedUser(`command-waiting-${Math.random().toString(36).slice(2)}`, recentSeries(3));
    });

    /** The refusal touched nothing: the due user was not tried and Dexcom was not called. */
    async function expectNothingDone(callsBefore: number): Promise<void> {
      expect(await attempted(waiting)).toBe(false);
      expect(await readingCount(waiting)).toBe(0);
      expect(dexcomCalls()).toBe(callsBefore);
    }

    it("exits 1 naming DEXCOM_REDIRECT_URI when only the client id and secret are set", async () => {
      const callsBefore = dexcomCalls();
      const result = await sync([], { DEXCOM_REDIRECT_URI: undefined });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      const said = lines(result.stderr);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^dexcom:sync failed: DEXCOM_REDIRECT_URI is not set\b/);
      expectNoSecrets(result);
      await expectNothingDone(callsBefore);
    });

    it("exits 1 naming each missing variable when only DEXCOM_CLIENT_ID is set", async () => {
      const callsBefore = dexcomCalls();
      const result = await sync([], { ...WITHOUT_DEXCOM, DEXCOM_CLIENT_ID: DEXCOM_ENV.DEXCOM_CLIENT_ID });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      const said = lines(result.stderr);
      // One line per missing variable, each naming it; no stack trace.
      expect(said).toHaveLength(2);
      expect(said.find((line) => line.includes("DEXCOM_CLIENT_SECRET"))).toMatch(/^dexcom:sync failed: DEXCOM_CLIENT_SECRET is not set\b/);
      expect(said.find((line) => line.includes("DEXCOM_REDIRECT_URI"))).toMatch(/^dexcom:sync failed: DEXCOM_REDIRECT_URI is not set\b/);
      await expectNothingDone(callsBefore);
    });

    it("exits 1 in one line when no DEXCOM_* variable is set", async () => {
      const callsBefore = dexcomCalls();
      const result = await sync([], WITHOUT_DEXCOM);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      const said = lines(result.stderr);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^dexcom:sync failed: .*DEXCOM_CLIENT_ID/);
      await expectNothingDone(callsBefore);
    });

    it.each([["--all"], ["users"], ["--dry-run"]])("exits 2 on the unknown argument %s", async (arg) => {
      const callsBefore = dexcomCalls();
      const result = await sync([arg]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      const said = lines(result.stderr);
      expect(said).toHaveLength(1);
      expect(said[0]).toContain(`unknown argument ${JSON.stringify(arg)}`);
      expect(said[0]).toContain("npm run dexcom:sync");
      await expectNothingDone(callsBefore);
    });
  });
});
