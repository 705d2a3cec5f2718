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
