import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describeConnectionError } from "../shared/db/connection-error.ts";
import { DatabaseTimeout } from "../shared/db/unavailable.ts";
import { startTestBackend, type TestBackend } from "./support/backend.ts";
import { emptyPostgres } from "./support/databases.ts";
import {
  type CountingServer,
  type ErrorFields,
  failingQueriesServer,
  hangingUpServer,
  noTlsServer,
  refusingServer,
} from "./support/fake-postgres.ts";
import { ADMIN_URL, databaseUrl } from "./support/postgres-urls.ts";
import { npmRun } from "./support/run.ts";
import { startServe } from "./support/serve-process.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

// The contract: a database that does not answer within 5 s gives 503 database_unavailable with
// Retry-After, and every request is answered within 15 s. These bounds tell "answered as the
// contract says" from "hung"; they are not speed measurements.
const UNAVAILABLE_WITHIN_MS = 5_000;
const ANSWERED_WITHIN_MS = 15_000;

async function timed<T>(work: Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work;
  return { result, ms: performance.now() - started };
}

function expectUnavailable(result: { status: number; headers: Headers; body: any }) {
  expect(result.status).toBe(503);
  expect(result.headers.get("retry-after")).toMatch(/^\d+$/);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a database that stops answering on an open connection (one pooled connection)", () => {
  let proxy: TcpProxy;
  let backend: TestBackend;
  let token: string;

  beforeAll(async () => {
    proxy = await startTcpProxy(Number(new URL(ADMIN_URL).port || 5432));
    backend = await startTestBackend({ DATABASE_POOL_SIZE: "1" }, {
      reachDatabaseAt: (url) => Object.assign(new URL(url), { port: String(proxy.port) }).toString(),
    });
    token = await backend.token("frozen-user");
    expect((await backend.call("users", { method: "POST", token })).status).toBe(201); // the pool is warm
  });
  afterAll(async () => {
    await backend.close();
    await proxy.close();
  });

  it("answers 503 with Retry-After within 5 s, every request, while it is frozen", async () => {
    proxy.freeze();
    const calls = await Promise.all([
      timed(backend.call("health")),
      timed(backend.call("users", { token })),
      timed(backend.call("users", { token })),
    ]);
    for (const { result, ms } of calls) {
      expectUnavailable(result);
      expect(ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    }
    expect(calls[0]!.result.body).toMatchObject({ status: "unavailable", database: "unreachable" });
    expect(calls[1]!.result.body.error).toBe("database_unavailable");
    const later = await timed(backend.call("users", { token }));
    expectUnavailable(later.result);
    expect(later.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  });

  it("serves again once the database answers, without waiting for the frozen connection", async () => {
    proxy.thaw();
    let health = await backend.call("health");
    for (let i = 0; i < 50 && health.status !== 200; i++) {
      await sleep(100);
      health = await backend.call("health");
    }
    expect(health.status).toBe(200);
    expect((await backend.call("users", { token })).status).toBe(200);
  });
});

describe("a lock held by another session (a migration altering users)", () => {
  let backend: TestBackend;
  let locker: postgres.Sql;
  let unlock: () => void;
  let token: string;

  beforeAll(async () => {
    backend = await startTestBackend();
    token = await backend.token("locked-out");
    expect((await backend.call("users", { method: "POST", token })).status).toBe(201);
    locker = postgres(backend.database.url, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    unlock?.();
    await locker.end({ timeout: 1 });
    await backend.close();
  });

  const waitingOnLocks = async () => {
    const [row] = await backend.database.db.query<{ waiting: number }>(
      "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    return row!.waiting;
  };

  it("answers 12 concurrent requests and health with 503 within 5 s, and its statements leave the server", async () => {
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const held = locker.begin(async (tx) => {
      await tx.unsafe("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE");
      locked();
      await new Promise<void>((resolve) => (unlock = resolve));
    });
    await isLocked;

    const users = Array.from({ length: 12 }, () => timed(backend.call("users", { token })));
    await sleep(50);
    const health = timed(backend.call("health"));
    for (const { result, ms } of await Promise.all(users)) {
      expectUnavailable(result);
      expect(result.body.error).toBe("database_unavailable");
      expect(ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    }
    expect((await health).ms).toBeLessThan(ANSWERED_WITHIN_MS);

    // Our statements were cancelled on the server, not left queued behind the lock.
    let waiting = await waitingOnLocks();
    for (let i = 0; i < 30 && waiting > 0; i++) {
      await sleep(100);
      waiting = await waitingOnLocks();
    }
    expect(waiting).toBe(0);

    unlock();
    await held;
    const after = await backend.call("users", { token });
    expect(after.status).toBe(200);
    expect(after.body.user.firebase_uid).toBe("locked-out");
  });
});

describe("a row lock held past the deadline, request after request", () => {
  let backend: TestBackend;
  let locker: postgres.Sql;
  let token: string;

  beforeAll(async () => {
    backend = await startTestBackend();
    token = await backend.token("row-locked");
    expect((await backend.call("users", { method: "POST", token })).status).toBe(201);
    locker = postgres(backend.database.url, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await locker.end({ timeout: 1 });
    await backend.close();
  });

  it("never stores a token whose request was answered 503 (each statement is cancelled at once)", async () => {
    const stored = async () =>
      (await backend.database.db.query<{ n: number }>("SELECT count(*)::int AS n FROM dexcom_tokens"))[0]!.n;
    // Six in a row: every cancel request must leave at once, not slowed down like a reconnect.
    for (let round = 0; round < 6; round++) {
      let locked!: () => void;
      let unlock!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const held = locker.begin(async (tx) => {
        await tx.unsafe("SELECT id FROM public.users FOR UPDATE");
        locked();
        await new Promise<void>((resolve) => (unlock = resolve));
      });
      await isLocked;
      const answer = await backend.call("dexcom-tokens", {
        method: "POST",
        token,
        json: { access_token: `access-${round}`, refresh_token: `refresh-${round}`, expires_in: 3600 },
      });
      expectUnavailable(answer);
      await sleep(300); // the lock goes away soon after the 503: a statement still waiting would now write
      unlock();
      await held;
      await sleep(200);
      expect(await stored(), `round ${round}`).toBe(0);
    }
  }, 60_000);
});

describe("a database slow to accept connections, but within the deadline", () => {
  it("is served: a new connection may take most of the 4 s", async () => {
    const proxy = await startTcpProxy(Number(new URL(ADMIN_URL).port || 5432));
    const backend = await startTestBackend({}, {
      reachDatabaseAt: (url) => Object.assign(new URL(url), { port: String(proxy.port) }).toString(),
    });
    try {
      proxy.delayNew(3_300);
      const health = await backend.call("health");
      expect(health.status).toBe(200);
    } finally {
      await backend.close();
      await proxy.close();
    }
  });
});

describe("a database without the schema (migrations not pushed)", () => {
  it("answers 503 database_unavailable on the API, not 500", async () => {
    const database = await emptyPostgres();
    const backend = await startTestBackend({ DATABASE_URL: database.url });
    try {
      const users = await backend.call("users", { token: await backend.token("early") });
      expectUnavailable(users);
      expect(users.body.error).toBe("database_unavailable");
      expect(backend.logs.join("\n")).not.toMatch(/unhandled_error/);
    } finally {
      await backend.close();
      await database.drop();
    }
  });
});

describe("what an operator reads when a statement runs out of time", () => {
  it("says the database did not answer (a lock, a stalled server), not that it cannot connect", () => {
    const line = describeConnectionError(new DatabaseTimeout(60_000), "postgresql://postgres:secret@db.example:5432/dms");
    expect(line).toMatch(/^database at postgresql:\/\/postgres@db\.example:5432\/dms: the database did not answer within 60000 ms \(a lock held by another session/);
    expect(line).not.toMatch(/cannot connect|secret/);
  });
});

// SQLSTATEs and messages as Postgres and Supavisor send them.
const REFUSALS: [string, ErrorFields][] = [
  ["Supavisor full", { severity: "FATAL", code: "XX000", message: "Max client connections reached" }],
  ["Supavisor session pool full", { severity: "FATAL", code: "XX000", message: "MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited to pool_size" }],
  ["Supavisor unknown tenant", { severity: "FATAL", code: "XX000", message: "Tenant or user not found" }],
  ["too many connections", { severity: "FATAL", code: "53300", message: "sorry, too many clients already" }],
  ["administrator shutdown", { severity: "FATAL", code: "57P01", message: "terminating connection due to administrator command" }],
  ["crash shutdown", { severity: "FATAL", code: "57P02", message: "terminating connection because of crash of another server process" }],
  ["starting up", { severity: "FATAL", code: "57P03", message: "the database system is starting up" }],
  ["connection failure", { severity: "FATAL", code: "08006", message: "connection failure" }],
  ["missing database", { severity: "FATAL", code: "3D000", message: 'database "dms" does not exist' }],
];

describe("a server or pooler that refuses the connection", () => {
  let server: CountingServer | undefined;
  let backend: TestBackend | undefined;
  afterEach(async () => {
    await backend?.close();
    await server?.close();
  });

  it.each(REFUSALS)("%s: 503 database_unavailable with Retry-After, logged without a stack", async (_, fields) => {
    server = await refusingServer(fields);
    backend = await startTestBackend({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/dms?sslmode=disable` });
    const token = await backend.token("refused");
    const health = await timed(backend.call("health"));
    expectUnavailable(health.result);
    expect(health.result.body).toMatchObject({ status: "unavailable", database: "unreachable" });
    const users = await timed(backend.call("users", { token }));
    expectUnavailable(users.result);
    expect(users.result.body.error).toBe("database_unavailable");
    expect(Math.max(health.ms, users.ms)).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    expect(backend.logs.join("\n")).not.toMatch(/unhandled_error|"stack"/);
  });

  it("a database that does not exist on a real server: 503, no stack in the log", async () => {
    backend = await startTestBackend({ DATABASE_URL: databaseUrl("dms_no_such_database") });
    const token = await backend.token("nowhere");
    expectUnavailable(await backend.call("health"));
    const users = await backend.call("users", { token });
    expectUnavailable(users);
    expect(users.body.error).toBe("database_unavailable");
    expect(backend.logs.join("\n")).not.toMatch(/unhandled_error|"stack"/);
  });
});

describe("a server that accepts connections and hangs up", () => {
  let server: CountingServer;
  let backend: TestBackend;
  beforeAll(async () => {
    server = await hangingUpServer();
    backend = await startTestBackend({
      DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/dms?sslmode=disable`,
      DATABASE_POOL_SIZE: "1",
    });
  });
  afterAll(async () => {
    await backend.close();
    await server.close();
  });

  it("answers 503 within 5 s, and the driver stops reconnecting instead of looping", async () => {
    const health = await timed(backend.call("health"));
    expectUnavailable(health.result);
    expect(health.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    await sleep(3_000); // the abandoned pool is closed within 2 s of the deadline
    const settled = server.connections();
    expect(settled).toBeLessThan(50); // paced: before, thousands in these seconds
    await sleep(1_000);
    expect(server.connections()).toBe(settled);
  });
});

const DB_HANDLER_EXITED: ErrorFields = {
  severity: "ERROR",
  code: "XX000",
  message: "(EDBHANDLEREXITED) connection to database closed. Check logs for more information",
};

describe("a pooler that lets us in and then fails every query", () => {
  let server: CountingServer;
  beforeAll(async () => (server = await failingQueriesServer(DB_HANDLER_EXITED)));
  afterAll(() => server.close());

  it("answers 503, with no rejection left unhandled in the driver", async () => {
    const backend = await startTestBackend({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/dms?sslmode=disable` });
    try {
      const token = await backend.token("pooled");
      expectUnavailable(await backend.call("health"));
      const users = await backend.call("users", { token });
      expectUnavailable(users);
      expect(users.body.error).toBe("database_unavailable");
    } finally {
      await backend.close();
    }
  });

  it("does not crash npm run serve, which goes on answering 503", async () => {
    const serve = await startServe(
      {
        DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/dms?sslmode=disable`,
        FIREBASE_PROJECT_ID: "demo-dms",
        ENCRYPTION_KEY: "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      },
      { readyWhen: /serving the functions/ },
    );
    try {
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${serve.baseUrl}/functions/v1/health`);
        expect(response.status).toBe(503);
        await response.body?.cancel();
      }
      expect(serve.child.exitCode).toBeNull();
      expect(serve.output()).not.toMatch(/Uncaught|unhandled/i);
    } finally {
      await serve.kill();
    }
  });
});

describe("sslmode=require against a server without TLS", () => {
  it("db:check says the server does not support SSL, not ECONNRESET", async () => {
    const server = await noTlsServer();
    try {
      const result = await npmRun("db:check", [], { DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/dms?sslmode=require` });
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(/does not support SSL.*sslmode=disable/);
      expect(result.stderr).not.toMatch(/ECONNRESET/);
    } finally {
      await server.close();
    }
  });
});
