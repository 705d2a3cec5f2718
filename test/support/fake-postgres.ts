import { createServer, type Server } from "node:net";
import { freePort } from "../../shared/local/ports.ts";

export interface FakeServer {
  port: number;
  close(): Promise<void>;
}

function listen(server: Server): Promise<FakeServer> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({
        port: typeof address === "object" && address ? address.port : 0,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/**
 * A server that speaks just enough of the Postgres protocol to refuse a password the way a real
 * one does (cleartext password request, then FATAL 28P01). The machines' Postgres trusts every
 * local connection, so a real wrong password cannot be produced there.
 */
export function passwordRefusingServer(): Promise<FakeServer> {
  const server = createServer((socket) => {
    let step: "startup" | "password" | "done" = "startup";
    socket.on("error", () => {});
    socket.on("data", () => {
      if (step === "done") return;
      if (step === "startup") {
        step = "password";
        const askPassword = Buffer.alloc(4);
        askPassword.writeInt32BE(3);
        socket.write(message("R", askPassword));
        return;
      }
      step = "done";
      const fields = ["SFATAL", "VFATAL", "C28P01", 'Mpassword authentication failed for user "postgres"'];
      socket.end(message("E", Buffer.from(fields.join("\0") + "\0\0")));
    });
  });
  return listen(server);
}

/** A server that accepts connections and never says a word: a hung database. */
export function silentServer(): Promise<FakeServer> {
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return listen(server).then((fake) => ({
    ...fake,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return fake.close();
    },
  }));
}

/** A port on which nothing listens. */
export function closedPort(): Promise<number> {
  return freePort();
}

export interface ErrorFields {
  severity: "ERROR" | "FATAL";
  code: string;
  message: string;
}

function errorResponse(fields: ErrorFields): Buffer {
  const { severity, code } = fields;
  return message("E", Buffer.from([`S${severity}`, `V${severity}`, `C${code}`, `M${fields.message}`].join("\0") + "\0\0"));
}

export interface CountingServer extends FakeServer {
  /** Connections accepted so far. */
  connections(): number;
}

function counting(handle: (socket: import("node:net").Socket) => void): Promise<CountingServer> {
  let connections = 0;
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    handle(socket);
  });
  return listen(server).then((fake) => ({
    ...fake,
    connections: () => connections,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return fake.close();
    },
  }));
}

/**
 * A server that answers the startup message with an error and hangs up: how Postgres refuses
 * (FATAL 53300 too many connections, 57P03 starting up, 3D000 no such database) and how Supabase's
 * pooler, Supavisor, refuses when it is full (FATAL XX000 "Max client connections reached").
 */
export function refusingServer(fields: ErrorFields): Promise<CountingServer> {
  return counting((socket) => socket.once("data", () => socket.end(errorResponse(fields))));
}

/** A server that takes the connection, reads the startup message, and hangs up without a word. */
export function hangingUpServer(): Promise<CountingServer> {
  return counting((socket) => socket.once("data", () => socket.destroy()));
}

/**
 * A server that lets the client in (trust) and then answers every query with an error, as a pooler
 * in transaction mode does when it cannot reach the database: a simple query (Q) gets ErrorResponse
 * and ReadyForQuery; in the extended protocol, Parse (P) gets the ErrorResponse and Sync (S) the
 * ReadyForQuery. Cancel requests are hung up on.
 */
export function failingQueriesServer(fields: ErrorFields): Promise<CountingServer> {
  const ready = message("Z", Buffer.from("I"));
  return counting((socket) => {
    let pending = Buffer.alloc(0);
    let started = false;
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!started) {
        if (pending.length < 8) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        if (pending.readInt32BE(4) === 80877102) return void socket.destroy(); // CancelRequest
        pending = pending.subarray(length);
        started = true;
        const keyData = Buffer.alloc(8);
        keyData.writeInt32BE(4242, 0);
        keyData.writeInt32BE(99, 4);
        socket.write(Buffer.concat([message("R", Buffer.alloc(4)), message("K", keyData), ready]));
      }
      while (pending.length >= 5) {
        const length = pending.readInt32BE(1);
        if (pending.length < length + 1) return;
        const type = String.fromCharCode(pending[0]!);
        pending = pending.subarray(length + 1);
        if (type === "Q") socket.write(Buffer.concat([errorResponse(fields), ready]));
        if (type === "P") socket.write(errorResponse(fields));
        if (type === "S") socket.write(ready);
        if (type === "X") socket.end();
      }
    });
  });
}

/** A server without TLS: it answers the SSLRequest with "N", as Postgres with ssl = off does, and hangs up on what follows. */
export function noTlsServer(): Promise<CountingServer> {
  return counting((socket) => {
    socket.once("data", () => {
      socket.write("N");
      socket.once("data", () => socket.destroy());
    });
  });
}
