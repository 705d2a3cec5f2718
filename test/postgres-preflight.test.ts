// Issue 8, fault 10: without a usable test server, `npm test` (vitest's global setup) says in one
// line what to start or which variable to set, and exits non-zero: no stack trace, no "No test
// files found". The server these tests run on is never stopped: a closed port stands in for it.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { hangingUpServer } from "./support/fake-postgres.ts";
import { postgresProblem } from "./support/postgres-preflight.ts";
import { ADMIN_URL } from "./support/postgres-urls.ts";
import { run } from "./support/run.ts";

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `npx vitest run <a test file that needs no database>` against this TEST_DATABASE_URL. */
const vitestWith = (testDatabaseUrl: string) =>
  run("npx", ["vitest", "run", "test/progress.test.ts"], { TEST_DATABASE_URL: testDatabaseUrl, NO_COLOR: "1" });

function expectOneCleanLine(result: { code: number | null; stdout: string; stderr: string }, says: RegExp) {
  expect(result.code).not.toBe(0);
  const output = `${result.stdout}\n${result.stderr}`;
  const problem = result.stderr.split("\n").filter((line) => line.trim() !== "");
  expect(problem, output).toHaveLength(1);
  expect(problem[0]).toMatch(says);
  expect(output).not.toMatch(/No test files found|Unhandled Error|\n\s+(at |❯ )/);
}

describe("without a usable test server", () => {
  it("vitest says what is wrong and which variable to fix, in one line, and exits non-zero", async () => {
    const port = await closedPort();
    const result = await vitestWith(`postgresql://postgres:secret@127.0.0.1:${port}/postgres`);
    expectOneCleanLine(
      result,
      new RegExp(`^the tests need PostgreSQL 15 or newer: .*postgresql://postgres@127\\.0\\.0\\.1:${port}/postgres\\b.*refused.*; fix TEST_DATABASE_URL`),
    );
    expect(`${result.stdout}${result.stderr}`).not.toContain("secret");
  });

  it("names an unknown user the same way", async () => {
    const url = new URL(ADMIN_URL);
    url.username = "no_such_role_dms";
    expectOneCleanLine(await vitestWith(url.toString()), /^the tests need .*no_such_role_dms@.*; fix TEST_DATABASE_URL/);
  });

  it("refuses a TEST_DATABASE_URL that is not a URL", async () => {
    expectOneCleanLine(await vitestWith("localhost:5432"), /^the tests need PostgreSQL 15 or newer: TEST_DATABASE_URL is not /);
  });

  it("gives up within its deadline on a server that accepts and hangs up, without flooding it", async () => {
    const server = await hangingUpServer();
    try {
      const problem = await postgresProblem(`postgresql://postgres@127.0.0.1:${server.port}/postgres`, true, 2);
      expect(problem).toMatch(/^the tests need PostgreSQL 15 or newer: .*; fix TEST_DATABASE_URL/);
      expect(server.connections()).toBeLessThan(50); // paced: before, tens of thousands, and no answer ever
    } finally {
      await server.close();
    }
  });

  it("says what to start when the default server is down", async () => {
    const port = await closedPort();
    const problem = await postgresProblem(`postgresql://postgres@127.0.0.1:${port}/postgres`, false);
    expect(problem).toMatch(/connection refused.*start it \(Debian: pg_ctlcluster 15 main start; any PostgreSQL 15\+.*\), or set TEST_DATABASE_URL/);
  });

  it("is content with the server the tests use", async () => {
    expect(await postgresProblem(ADMIN_URL, false)).toBeNull();
  });
});
