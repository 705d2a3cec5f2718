import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { errorResponse, internalError } from "../http/errors.ts";
import { requestIdFor } from "../http/request-id.ts";
import { LocalStackError } from "./errors.ts";
import { freePort } from "./ports.ts";

// An editor often saves in steps (write a temporary file, rename it); one reload after the last.
const SETTLE_MS = 150;
const READY_WITHIN_MS = 60_000;
const POLL_MS = 50;
/**
 * What scripts/serve.ts prints once it listens, which is once every function module is loaded
 * (they are imported before the server starts).
 */
export const SERVING = "serving the functions on";
const STOP_WITHIN_MS = 10_000;
// Source files; an editor's swap and backup files are not.
const SOURCE = /\.(ts|js|mjs|cjs|json)$/;

export interface ReloaderOptions {
  /** The command that serves every function on $PORT: `deno run -A scripts/serve.ts`. */
  command: readonly string[];
  cwd: string;
  /** Its environment; PORT is set per process. */
  env: Record<string, string | undefined>;
  /** Calls `onChange` with the paths of each batch of changed files; returns a function that stops watching. */
  watch(onChange: (paths: string[]) => void): () => void;
  /** A line for the person who ran `npm start`. */
  say(line: string): void;
}

export interface Reloader {
  /** Hands each request to the functions process of the moment. */
  handler(request: Request): Promise<Response>;
  /** Stops watching and stops the functions processes (after their requests in flight). */
  close(): Promise<void>;
}

interface Generation {
  origin: string;
  child: ChildProcess;
  exited: Promise<void>;
  /** Requests handed to it and not yet answered in full. */
  inFlight: number;
  idle?: () => void;
  /** Set when we stop it: its exit is then no surprise. */
  stopping?: boolean;
}

/**
 * `npm start -- --watch`: the functions run in a process of their own (`command`, on a free port)
 * while the database and the emulator stay up in ours. When a source file changes, a new process
 * loads the code; only once it answers does it get the requests, and the old one is stopped once
 * the requests it was given are answered. So no request is lost, and none meets code half loaded: a
 * process that fails to start (a syntax error) is reported and the previous one keeps serving, and
 * one whose files changed again while it loaded is discarded for a fresh one.
 *
 * Resolves once the first process answers; throws LocalStackError with its output if it cannot.
 */
export async function startReloader(options: ReloaderOptions): Promise<Reloader> {
  let current = await startGeneration(options).catch((error) => {
    throw new LocalStackError(`the functions did not start:\n${error.message}`);
  });
  let closed = false;
  let reloading: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let changed: string[] = [];
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading ??= reload().finally(() => (reloading = undefined));
    }, SETTLE_MS);
  };
  // A process that ends on its own (it crashed) is replaced at once, rather than at the next save.
  const serve = (generation: Generation) => {
    current = generation;
    void generation.exited.then(() => {
      if (closed || generation.stopping || generation !== current) return;
      options.say(`the functions process ended on its own (exit ${generation.child.exitCode ?? generation.child.signalCode}); starting another`);
      changed.push("restart");
      schedule();
    });
  };
  serve(current);

  const reload = async () => {
    while (!closed && changed.length > 0) {
      const paths = changed;
      changed = [];
      const started = performance.now();
      let next: Generation;
      try {
        next = await startGeneration(options);
      } catch (error) {
        options.say(`functions not reloaded (${describe(paths)}), the previous code still serves:\n${(error as Error).message}`);
        continue;
      }
      // Files that changed while it loaded are in `changed` again.
      if (closed || changed.length > 0) {
        await stopGeneration(next); // it may hold a mix of old and new files: the next round loads them all
        continue;
      }
      const old = current;
      serve(next);
      options.say(`functions reloaded in ${((performance.now() - started) / 1000).toFixed(1)} s (${describe(paths)})`);
      void retire(old);
    }
  };

  const unwatch = options.watch((paths) => {
    const sources = paths.filter((path) => SOURCE.test(path));
    if (sources.length === 0 || closed) return;
    changed.push(...sources);
    schedule();
  });

  return {
    handler: (request) => forward(current, request),
    close: async () => {
      closed = true;
      unwatch();
      clearTimeout(timer);
      await reloading;
      await retire(current);
    },
  };
}

/** Serves the functions from a new process on a free port; resolves once it listens. */
async function startGeneration(options: ReloaderOptions): Promise<Generation> {
  const port = await freePort();
  const child = spawn(options.command[0]!, options.command.slice(1), {
    cwd: options.cwd,
    // DMS_STOP_WITH_PARENT: it stops when we are gone, even killed hard (scripts/serve.ts).
    env: { ...options.env, PORT: String(port), DMS_STOP_WITH_PARENT: "1" },
    // Its own process group: a terminal's Ctrl-C reaches us, and we stop it in order.
    detached: true,
    stdio: ["ignore", "inherit", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Until it answers, its output is kept (its banner is noise; its errors are the report); then it
  // goes to our stderr as it comes.
  let startup = "";
  let started = false;
  child.stderr!.on("data", (chunk: Buffer) => (started ? process.stderr.write(chunk) : (startup += chunk)));
  const generation: Generation = { origin: `http://127.0.0.1:${port}`, child, exited, inFlight: 0 };

  const deadline = Date.now() + READY_WITHIN_MS;
  while (!startup.includes(SERVING)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(startup.trim() || "it exited");
    if (Date.now() > deadline) {
      await stopGeneration(generation);
      throw new Error(`it did not answer within ${READY_WITHIN_MS / 1000} s\n${startup.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  started = true;
  return generation;
}

// Hop-by-hop and computed headers are the proxy's own to set.
const NOT_FORWARDED = ["host", "connection", "keep-alive", "content-length", "transfer-encoding"];

/**
 * The request as it came, to the functions process; the answer read in full before it is counted
 * done, so that the process is not stopped under a response.
 */
async function forward(generation: Generation, request: Request): Promise<Response> {
  generation.inFlight++;
  try {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    for (const name of NOT_FORWARDED) headers.delete(name);
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const response = await fetch(`${generation.origin}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body: hasBody ? await request.arrayBuffer() : undefined,
      redirect: "manual",
    });
    const body = request.method === "HEAD" ? null : await response.arrayBuffer();
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  } catch {
    // The process died under the request (it exits only when stopped, after its requests).
    return errorResponse(internalError(), requestIdFor(request));
  } finally {
    if (--generation.inFlight === 0) generation.idle?.();
  }
}

/** Stops it once the requests it was given are answered. */
async function retire(generation: Generation): Promise<void> {
  if (generation.inFlight > 0) await new Promise<void>((resolve) => (generation.idle = resolve));
  await stopGeneration(generation);
}

/** SIGTERM (it finishes what it serves and closes its pool), SIGKILL if it takes too long. */
async function stopGeneration(generation: Generation): Promise<void> {
  const { child, exited } = generation;
  generation.stopping = true;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_WITHIN_MS);
  await exited;
  clearTimeout(timer);
}

function describe(paths: string[]): string {
  const unique = [...new Set(paths)];
  return unique.length <= 3 ? unique.join(", ") : `${unique.slice(0, 3).join(", ")} and ${unique.length - 3} more`;
}
