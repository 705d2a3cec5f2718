// Issue 8, fault 5: one rule for an email, in one place (dms.email_key, migration
// 20261129000001_email_key), for storing it and for comparing it, on Postgres and on PGlite.
// "The same address" means: equal after NFC and Unicode simple case folding (in lower case), with
// İ folded to i + U+0307. So ΟΔΟΣ/οδος/οδοσ are one address, İNFO/i̇nfo are one, info is another.
import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildLocalServer } from "../shared/app/server.ts";
import { generateKey } from "../shared/crypto/fernet.ts";
import type { Database } from "../shared/db/database.ts";
import { jsonLogger } from "../shared/http/log.ts";
import { type CallOptions, type CallResult, startTestBackend, toResult, BASE_URL } from "./support/backend.ts";
import { snapshotTables } from "./support/contract-helpers.ts";
import { migratedPglite } from "./support/databases.ts";
import { jwksHandler } from "./support/firebase-jwks-server.ts";
import { type Claims, createTestKeys } from "./support/firebase-tokens.ts";
import { insertUser } from "./support/rows.ts";

/** What these tests need of a backend: requests, tokens and its database. */
interface Target {
  db: Database;
  call(fn: string, options?: CallOptions): Promise<CallResult>;
  token(uid: string, claims?: Claims): Promise<string>;
  close(): Promise<void>;
}

/** Every function as `npm start` builds it, on an in-memory PGlite with every migration applied. */
async function pgliteTarget(): Promise<Target> {
  const db = await migratedPglite();
  const keys = await createTestKeys();
  const msw = setupServer(jwksHandler(keys.jwks).handler);
  msw.listen({ onUnhandledRequest: "error" });
  const server = await buildLocalServer(
    { FIREBASE_PROJECT_ID: keys.projectId, ENCRYPTION_KEY: generateKey() },
    jsonLogger(() => {}),
    db,
  );
  return {
    db,
    call: async (fn, options = {}) => {
      const headers = new Headers(options.headers);
      if (options.token !== undefined) headers.set("authorization", `Bearer ${options.token}`);
      return toResult(await server.handler(new Request(`${BASE_URL}/${fn}${options.path ?? ""}`, {
        method: options.method ?? "GET",
        headers,
      })));
    },
    token: (uid, claims = {}) => keys.idToken({ sub: uid, email: `${uid}@example.com`, ...claims }),
    close: async () => {
      msw.close();
      await db.close();
    },
  };
}

const targets: [string, () => Promise<Target>][] = [
  ["Postgres", async () => {
    const backend = await startTestBackend();
    return { db: backend.database.db, call: backend.call, token: backend.token, close: backend.close };
  }],
  ["PGlite", pgliteTarget],
];

// The rule, per character, as the migration's table was generated (Node's ICU, Unicode 17):
// toLowerCase of toUpperCase when each gives one character, else toLowerCase when that does; İ and
// ı are left to the rule's own words (İ -> i + U+0307 before the table; ı has no folding).
const one = (s: string) => ([...s].length === 1 ? s : null);
function foldChar(c: string): string {
  if (c === "\u0130" || c === "\u0131") return c;
  const upper = one(c.toUpperCase());
  const lower = upper === null ? null : one(upper.toLowerCase());
  return lower ?? one(c.toLowerCase()) ?? c;
}
function expectedKey(email: string): string {
  const folded = [...email.normalize("NFC").replaceAll("\u0130", "i\u0307")].map(foldChar).join("");
  return folded.normalize("NFC");
}

// Every code point whose case means anything (by Node's Unicode), and all of U+0001..U+07FF.
const CASED = /[\p{Cased}\p{Changes_When_Casefolded}\p{Changes_When_Lowercased}\p{Changes_When_Uppercased}\p{Changes_When_Titlecased}]/u;
const codePoints: number[] = [];
for (let cp = 1; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  if (cp < 0x800 || CASED.test(String.fromCodePoint(cp))) codePoints.push(cp);
}
// The table in the migration is Unicode 17.0; a Node with newer Unicode knows case pairs it lacks.
const TABLE_UNICODE = "17.0";

const GREEK = ["ΟΔΟΣ", "οδος", "οδοσ", "Οδος"];

describe.each(targets)("emails on %s", (_name, open) => {
  let target: Target;
  beforeAll(async () => (target = await open()));
  afterAll(() => target.close());

  const key = async (email: string) =>
    (await target.db.query<{ key: string }>("SELECT dms.email_key($1) AS key", [email]))[0]!.key;

  describe("dms.email_key", () => {
    it.each([
      ["ΟΔΟΣ@Example.GR", "οδοσ@example.gr"],
      ["οδος@example.gr", "οδοσ@example.gr"],
      ["İNFO@example.com", "i\u0307nfo@example.com"],
      ["i\u0307nfo@example.com", "i\u0307nfo@example.com"],
      ["I\u0307NFO@example.com", "i\u0307nfo@example.com"],
      ["info@example.com", "info@example.com"],
      ["ıNFO@example.com", "ınfo@example.com"],
      ["STRASSE@Example.de", "strasse@example.de"],
      ["Straße@example.de", "straße@example.de"],
      ["STRAẞE@example.de", "straße@example.de"],
      ["ÉLODIE@example.fr", "élodie@example.fr"],
      ["E\u0301LODIE@example.fr", "élodie@example.fr"],
      ["\u212Aelvin@example.com", "kelvin@example.com"],
      ["Mixed.Case@Example.COM", "mixed.case@example.com"],
    ])("%s -> %s", async (email, expected) => {
      expect(await key(email)).toBe(expected);
      expect(await key(expected)).toBe(expected);
    });

    it("is null for null", async () => {
      const [row] = await target.db.query<{ key: string | null }>("SELECT dms.email_key(NULL) AS key");
      expect(row!.key).toBeNull();
    });

    it(`folds every cased character as the rule says, and is idempotent (${codePoints.length} code points)`, async () => {
      const rows = await target.db.query<{ cp: number; key: string; again: string }>(
        `SELECT cp, k AS key, dms.email_key(k) AS again
         FROM unnest(string_to_array($1, ',')::int[]) AS cp, LATERAL (SELECT dms.email_key(chr(cp)) AS k) AS keyed
         ORDER BY cp`,
        [codePoints.join(",")],
      );
      const newerUnicode = process.versions.unicode !== TABLE_UNICODE;
      const wrong = rows.filter(({ cp, key }) => {
        const expected = expectedKey(String.fromCodePoint(cp));
        // On another Unicode, only what the table does is checked against this Node's case pairs.
        if (newerUnicode && key === String.fromCodePoint(cp).normalize("NFC")) return false;
        return key !== expected;
      }).map(({ cp, key }) => `U+${cp.toString(16).toUpperCase()} -> ${[...key].map((c) => c.codePointAt(0)!.toString(16))}`);
      expect(wrong).toEqual([]);
      expect(rows.filter((r) => r.again !== r.key).map((r) => r.cp)).toEqual([]);
      // The table maps 1,509 characters; a shortened one would still pass the checks above on
      // another Unicode.
      expect(rows.filter((r) => r.key !== String.fromCodePoint(r.cp).normalize("NFC")).length).toBeGreaterThanOrEqual(1_500);
    });

    it("is what register_user looks users up by, through an index", async () => {
      const plan = await target.db.transaction(async (tx) => {
        await tx.exec("SET LOCAL enable_seqscan = off");
        return tx.query<Record<string, string>>("EXPLAIN SELECT id FROM public.users u WHERE dms.email_key(u.email) = 'x@example.com'");
      });
      expect(plan.map((row) => Object.values(row)[0]).join("\n")).toMatch(/Index.*users_email_key_idx/);
    });
  });

  describe("POST /users", () => {
    let n = 0;
    // Each case on a domain of its own, so they cannot meet each other's rows.
    const domain = (tld: string) => `case${++n}.example.${tld}`;
    const register = async (uid: string, email: string, verified = true) =>
      target.call("users", { method: "POST", token: await target.token(uid, { email, email_verified: verified }) });
    const rowOf = (id: number) =>
      target.db.query<{ id: number; firebase_uid: string | null; email: string }>(
        "SELECT id, firebase_uid, email FROM users WHERE id = $1",
        [id],
      );
    const countUsers = async () => (await target.db.query<{ n: number }>("SELECT count(*)::int AS n FROM users"))[0]!.n;

    const adoptions: [string, string][] = [
      ...GREEK.flatMap((legacy) => GREEK.map((token): [string, string] => [legacy, token])),
      ["İNFO", "İNFO"],
      ["İNFO", "i\u0307nfo"],
      ["İNFO", "İnfo"],
      ["i\u0307nfo", "İNFO"],
      ["ÉLODIE", "e\u0301lodie"],
      ["E\u0301LODIE", "élodie"],
    ];
    it.each(adoptions)("adopts the row from before Firebase %j for a verified token %j (200), one row, stored by the rule", async (legacy, spelt) => {
      const at = domain("gr");
      const legacyId = await insertUser(target.db, { firebase_uid: null, email: `${legacy}@${at}` });
      const before = await countUsers();
      const { status, body } = await register(`adopter-${n}`, `${spelt}@${at}`);
      expect([status, body.user?.id]).toEqual([200, legacyId]);
      expect(await countUsers()).toBe(before);
      const stored = expectedKey(`${spelt}@${at}`);
      expect(stored).toBe(expectedKey(`${legacy}@${at}`));
      expect(await rowOf(legacyId)).toEqual([{ id: legacyId, firebase_uid: `adopter-${n}`, email: stored }]);
      expect(body.user.email).toBe(stored);
    });

    it("keeps İNFO@ and info@ apart: a token for info@ makes its own row and leaves the other alone (201)", async () => {
      const at = domain("com");
      const legacyId = await insertUser(target.db, { firebase_uid: null, email: `İNFO@${at}` });
      const { status, body } = await register("plain-info", `info@${at}`);
      expect(status).toBe(201);
      expect(body.user.email).toBe(`info@${at}`);
      expect(await rowOf(legacyId)).toEqual([{ id: legacyId, firebase_uid: null, email: `İNFO@${at}` }]);
    });

    it("stores a new email by the rule: ΟΔΟΣ@ as οδοσ@, İNFO@ as i̇nfo@ (201)", async () => {
      const at = domain("gr");
      const greek = await register("new-greek", `ΟΔΟΣ@${at.toUpperCase()}`);
      expect([greek.status, greek.body.user.email]).toEqual([201, `οδοσ@${at}`]);
      const dotted = await register("new-dotted", `İNFO@${at}`);
      expect([dotted.status, dotted.body.user.email]).toEqual([201, `i\u0307nfo@${at}`]);
      const [row] = await target.db.query<{ email: string }>("SELECT email FROM users WHERE firebase_uid = 'new-greek'");
      expect(row!.email).toBe(`οδοσ@${at}`);
    });

    it.each([
      ["ΟΔΟΣ", "οδοσ"],
      ["οδοσ", "ΟΔΟΣ"],
      ["Οδος", "οδοσ"],
      ["İNFO", "i\u0307nfo"],
    ])("refuses %j's address to another Firebase account spelling it %j (409 email_in_use)", async (first, second) => {
      const at = domain("gr");
      expect((await register(`holder-${n}`, `${first}@${at}`)).status).toBe(201);
      const before = await snapshotTables(target.db);
      const { status, body } = await register(`other-${n}`, `${second}@${at}`);
      expect([status, body.error]).toEqual([409, "email_in_use"]);
      expect(await snapshotTables(target.db)).toEqual(before);
    });

    it("refuses an address held by a Firebase row from before, spelt İNFO@, to i̇nfo@ (409 email_in_use)", async () => {
      const at = domain("com");
      await insertUser(target.db, { firebase_uid: "old-holder", email: `İNFO@${at}` });
      const before = await snapshotTables(target.db);
      const { status, body } = await register("dotted-squatter", `i\u0307nfo@${at}`);
      expect([status, body.error]).toEqual([409, "email_in_use"]);
      expect(await snapshotTables(target.db)).toEqual(before);
    });

    it("answers a refresh spelt in another case 200, changing nothing", async () => {
      const at = domain("gr");
      const created = await register("refresher", `ΟΔΟΣ@${at}`);
      const again = await register("refresher", `οδος@${at}`);
      expect([again.status, again.body.user]).toEqual([200, created.body.user]);
    });

    it("refuses an email whose key is longer than the column, though its spelling is not (400)", async () => {
      const email = `${"İ".repeat(126)}@${domain("com")}`;
      expect(email.length).toBeLessThanOrEqual(255);
      const before = await snapshotTables(target.db);
      const { status, body } = await register("long-dotted", email);
      expect([status, body.error]).toEqual([400, "validation_failed"]);
      expect(await snapshotTables(target.db)).toEqual(before);
    });
  });
});
