import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  /** The database "goes down": open connections are cut and new ones refused. */
  down(): Promise<void>;
  /** The database "hangs": connections are accepted and never answered. */
  hang(): Promise<void>;
  /** Back to forwarding. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of the test Postgres, so a test can take "the database" down and bring it
 * back without touching the server other tests share.
 */
export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let mode: "forward" | "hang" = "forward";
  let server: Server | null = null;
  let port = 0;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        track(client);
        if (mode === "hang") return;
        const upstream = connect(targetPort, targetHost);
        track(upstream);
        client.pipe(upstream).pipe(client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
      });
      server.listen(port, "127.0.0.1", () => {
        const address = server!.address();
        port = typeof address === "object" && address ? address.port : port;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (server === null) return resolve();
      server.close(() => resolve());
      server = null;
    });

  await listen();
  return {
    get port() {
      return port;
    },
    down: stop,
    hang: async () => {
      await stop();
      mode = "hang";
      await listen();
    },
    up: async () => {
      await stop();
      mode = "forward";
      await listen();
    },
    close: stop,
  };
}
