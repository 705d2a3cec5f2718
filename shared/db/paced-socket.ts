import { connect, type Socket } from "node:net";
import { setTimeout as after } from "node:timers";

// postgres.js reconnects at once, without end, when a server accepts a connection and closes it
// before it is ready (a pooler shedding load does that): thousands of connections a second. Every
// pool connects through this instead, which makes each attempt after such a quick close wait a
// little longer (50 ms, doubling, at most 1 s), until a connection lives long enough to count.
// Cancel requests are neither paced nor counted: the server closes them at once by design, and a
// cancel that waits lets the statement it should stop run on after its request was answered.

const QUICK_CLOSE_MS = 1000;
const FIRST_PAUSE_MS = 50;
const LONGEST_PAUSE_MS = 1000;

interface DriverOptions {
  host: string[];
  port: number[];
  path?: string | false;
  ssl?: unknown;
  sslnegotiation?: string | null;
}

/** The server answered the driver's SSLRequest with "no" while the URL requires TLS. */
export class SslNotSupported extends Error {
  override name = "SslNotSupported";
  readonly code = "SSL_NOT_SUPPORTED";
  constructor() {
    super("the server does not support SSL");
  }
}

export interface PacedSocket {
  /** The `socket` option of a postgres.js pool: TCP (or a Unix socket) to its hosts, in turn, paced after quick closes. */
  (options: DriverOptions): Promise<Socket>;
  /**
   * Runs `send`, which must ask the driver for its cancel request's socket synchronously (as
   * postgres.js's canceller does), with that socket left unpaced and uncounted.
   */
  unpaced<T>(send: () => T): T;
}

export function pacedSocket(): PacedSocket {
  let quickCloses = 0;
  let next = 0;
  let exempt = false;
  const open = async (options: DriverOptions) => {
    const counted = !exempt;
    exempt = false;
    if (counted && quickCloses > 0) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(FIRST_PAUSE_MS * 2 ** (quickCloses - 1), LONGEST_PAUSE_MS)));
    }
    const index = next++ % options.host.length;
    const host = options.host[index]!;
    const socket = options.path ? connect(options.path) : connect(options.port[index] ?? 5432, host);
    // The driver names the TLS server (SNI) after this field, as it does with its own sockets.
    Object.assign(socket, { host });
    // The driver goes on with TLS after a refusal and the server then hangs up, which reads only as
    // ECONNRESET; the refusal itself (the byte 'N') is the error a person can act on.
    if (options.ssl && !["prefer", "allow"].includes(String(options.ssl)) && options.sslnegotiation !== "direct") {
      socket.once("data", (reply: Buffer) => reply[0] === 0x4e && socket.destroy(new SslNotSupported()));
    }
    let lasted = false;
    const timer = after(() => {
      lasted = true;
      quickCloses = 0;
    }, QUICK_CLOSE_MS).unref();
    socket.once("close", () => {
      clearTimeout(timer);
      if (!lasted && counted) quickCloses++;
    });
    return socket;
  };
  return Object.assign(open, {
    unpaced<T>(send: () => T): T {
      exempt = true;
      try {
        return send();
      } finally {
        exempt = false;
      }
    },
  });
}
