import { connect, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  port: number;
  /** The database "goes down": open connections are cut and new ones refused. */
  down(): Promise<void>;
  /** The database "hangs": connections are accepted and never answered. */
  hang(): Promise<void>;
  /**
   * The database stops answering while every TCP connection stays open (a proxy or NAT that stops
   * forwarding): bytes already in flight stay where they are, new connections are accepted and held.
   */
  freeze(): void;
  /** After freeze(): forwarding again, on the old connections and the held new ones. */
  thaw(): void;
  /** A database slow to accept: each new connection is forwarded only after `ms` (0: at once again). */
  delayNew(ms: number): void;
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
  const pairs = new Set<[Socket, Socket]>();
  const held: Socket[] = [];
  let mode: "forward" | "hang" | "frozen" = "forward";
  let acceptDelayMs = 0;
  let server: Server | null = null;
  let port = 0;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const forward = (client: Socket) => {
    const upstream = connect(targetPort, targetHost);
    track(upstream);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream).pipe(client);
    client.on("close", () => (upstream.destroy(), pairs.delete(pair)));
    upstream.on("close", () => (client.destroy(), pairs.delete(pair)));
  };
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        track(client);
        if (mode === "hang") return;
        if (mode === "frozen") {
          client.pause();
          held.push(client);
          return;
        }
        if (acceptDelayMs === 0) return forward(client);
        client.pause();
        setTimeout(() => {
          if (client.destroyed) return;
          forward(client);
          client.resume();
        }, acceptDelayMs);
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
      held.length = 0;
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
    freeze: () => {
      mode = "frozen";
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    thaw: () => {
      mode = "forward";
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
      for (const client of held.splice(0)) {
        forward(client);
        client.resume();
      }
    },
    delayNew: (ms) => {
      acceptDelayMs = ms;
    },
    up: async () => {
      await stop();
      mode = "forward";
      await listen();
    },
    close: stop,
  };
}
