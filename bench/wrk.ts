// The load generator the HTTP benches share: wrk (C, from Debian's package), so the client's own
// cost stays small next to the server's. Each connection's requests come from a Lua script that
// cycles through the given requests (typically one per user, each with its own token).
import { outputOf } from "./child.ts";
import { withCleanup } from "./interruptible.ts";

export interface WrkRequest {
  method: "GET" | "POST";
  /** Path and query, as sent on the request line. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface WrkResult {
  /** Requests per second, as wrk reports it. */
  rps: number;
  requests: number;
  seconds: number;
  /** Answers with a status other than 2xx or 3xx. */
  errors: number;
  /** Latency percentiles in milliseconds (NaN when wrk did not report them). */
  p50: number;
  p99: number;
}

/**
 * Runs wrk for `seconds` at `connections` concurrent connections against the origin `url`, sending
 * `requests` in turn. null when wrk is not installed or did not report a rate.
 */
export async function wrk(
  url: string,
  requests: WrkRequest[],
  options: { connections: number; seconds: number },
): Promise<WrkResult | null> {
  const formatted = requests.map((request) => {
    const headers = Object.entries(request.headers).map(([name, value]) => `[${lua(name)}] = ${lua(value)}`);
    return `wrk.format(${lua(request.method)}, ${lua(request.path)}, {${headers.join(", ")}}, ${
      request.body === undefined ? "nil" : lua(request.body)
    })`;
  });
  const script = `local requests = {}
init = function() requests = { ${formatted.join(", ")} } end
local i = 0
request = function() i = i % #requests + 1; return requests[i] end
`;
  const { connections, seconds } = options;
  return await withTempFile(".lua", script, async (path) => {
    try {
      const { success, stdout } = await outputOf(
        new Deno.Command("wrk", {
          args: ["-t2", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", path, url],
          stdout: "piped",
          stderr: "null",
        }),
      );
      const out = new TextDecoder().decode(stdout);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      if (!success || !rps) return null;
      return {
        rps: Number(rps[1]),
        requests: Number(rps[1]) * seconds,
        seconds,
        errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
        p50: latency(out, "50%"),
        p99: latency(out, "99%"),
      };
    } catch {
      return null; // wrk is not installed
    }
  });
}

/**
 * The same requests against the origins `a` and `b` in turns (a, b, b, a, a, b, ...), `rounds` times,
 * each turn seconds / rounds long (at least 1 s), after a 1 s warm-up of each: so both meet the
 * same moments of a busy machine. Per side: the requests per second over all its turns, the mean
 * of its turns' p50 and p99, and its errors. null when wrk is not installed.
 */
export async function alternating(
  a: string,
  b: string,
  requests: WrkRequest[],
  options: { connections: number; seconds: number; rounds: number },
): Promise<[WrkResult, WrkResult] | null> {
  const { connections, rounds } = options;
  const seconds = Math.max(1, Math.round(options.seconds / rounds));
  const turns: WrkResult[][] = [[], []];
  for (const origin of [a, b]) {
    if (await wrk(origin, requests, { connections, seconds: 1 }) === null) return null;
  }
  for (let round = 0; round < rounds; round++) {
    // a first in even rounds, b first in odd ones: neither always follows the other.
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const result = await wrk([a, b][i]!, requests, { connections, seconds });
      if (result === null) return null;
      turns[i]!.push(result);
    }
  }
  return [combined(turns[0]!), combined(turns[1]!)];
}

function combined(turns: WrkResult[]): WrkResult {
  const sum = (pick: (turn: WrkResult) => number) => turns.reduce((total, turn) => total + pick(turn), 0);
  const requests = sum((turn) => turn.requests);
  const seconds = sum((turn) => turn.seconds);
  return {
    rps: requests / seconds,
    requests,
    seconds,
    errors: sum((turn) => turn.errors),
    p50: sum((turn) => turn.p50) / turns.length,
    p99: sum((turn) => turn.p99) / turns.length,
  };
}

/** Runs fn with a temporary file holding `text`, removed afterwards, also when interrupted. */
export async function withTempFile<T>(suffix: string, text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix });
  return await withCleanup(() => Deno.remove(path), async () => {
    await Deno.writeTextFile(path, text);
    return await fn(path);
  });
}

/** A Lua string literal: for printable ASCII (tokens, JSON bodies) JSON's escapes read the same in Lua. */
function lua(text: string): string {
  return JSON.stringify(text);
}

function latency(out: string, percentile: string): number {
  const match = new RegExp(`${percentile}\\s+([\\d.]+)(us|ms|s)`).exec(out);
  if (!match) return NaN;
  return Number(match[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[match[2]!]!;
}
