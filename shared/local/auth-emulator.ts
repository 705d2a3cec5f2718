import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalStackError } from "./errors.ts";
import { freePort } from "./ports.ts";
import { untilAnswers } from "./until-answers.ts";

const FIREBASE_CLI = fileURLToPath(new URL("../../node_modules/firebase-tools/lib/bin/firebase.js", import.meta.url));
const EXIT_WITH_PARENT = fileURLToPath(new URL("./exit-with-parent.cjs", import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface AuthEmulator {
  /** host:port, the value of FIREBASE_AUTH_EMULATOR_HOST. */
  address: string;
  stop(): Promise<void>;
}

export interface AuthEmulatorOptions {
  host: string;
  port: number;
  projectId: string;
  /**
   * Accounts are imported from here at start and exported here at stop, so sign-ins survive
   * restarts. A relative path is taken from our working directory (the repository, under npm).
   */
  accountsDir: string;
  /**
   * The CLI's working directory (its firebase.json and firebase-debug.log), made if missing and
   * reused by the next start: a fixed place, so a stack killed hard leaves nothing to collect.
   * A relative path is taken from our working directory.
   */
  workDir: string;
}

/**
 * The Firebase Auth emulator of the firebase-tools package, started and stopped with the stack. It
 * never outlives this process: it runs with exit-with-parent.cjs preloaded and a pipe from us on its
 * stdin, so it shuts down cleanly (accounts exported) once we are gone, even killed with SIGKILL.
 *
 * It stays in our process group, so that a SIGKILL to the group ends it with us. A Ctrl-C or a
 * SIGTERM to the group thus reaches it as well as us: the first such signal starts its clean
 * shutdown, and exit-with-parent.cjs keeps the later ones (our `stop()`'s SIGINT among them) from
 * the CLI, which would take a second signal for "exit now" and cut its export short.
 */
export async function startAuthEmulator(options: AuthEmulatorOptions, signal?: AbortSignal): Promise<AuthEmulator> {
  const { host, port, projectId } = options;
  // The CLI runs in workDir: a relative path would mean another place to it than to us.
  const accountsDir = resolve(options.accountsDir);
  const workDir = resolve(options.workDir);
  // The CLI's export at exit finds its own hub by a file named after the project in the temporary
  // directory: shared by every emulator of that project on the machine, it would lead the export to
  // another stack's hub (or to none). A temporary directory of its own, and no file left there by
  // an emulator killed hard (a recycled pid would make the hub keep it).
  const tmpDir = join(workDir, "tmp");
  await mkdir(tmpDir, { recursive: true });
  await rm(join(tmpDir, `hub-${projectId}.json`), { force: true });
  // The CLI also reserves a hub and a logging port; free ones keep two stacks from colliding.
  await writeFile(join(workDir, "firebase.json"), JSON.stringify({
    emulators: {
      auth: { host, port },
      hub: { host, port: await freePort(host) },
      logging: { host, port: await freePort(host) },
      ui: { enabled: false },
    },
  }));
  const imported = existsSync(join(accountsDir, "firebase-export-metadata.json"));
  const child = spawn("node", [
    "--require",
    EXIT_WITH_PARENT,
    FIREBASE_CLI,
    "emulators:start",
    "--only",
    "auth",
    "--project",
    projectId,
    ...(imported ? ["--import", accountsDir] : []),
    "--export-on-exit",
    accountsDir,
  ], {
    cwd: workDir,
    stdio: ["pipe", "pipe", "pipe"], // stdin: the pipe whose end tells it that we are gone
    env: { ...process.env, CI: "true", TMPDIR: tmpDir },
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output = (output + chunk).slice(-4000)));
  child.stderr!.on("data", (chunk) => (output = (output + chunk).slice(-4000)));

  const stop = () => stopChild(child);
  try {
    await untilAnswers(`http://${host}:${port}/`, {
      timeoutMs: READY_TIMEOUT_MS,
      giveUp: () => {
        if (signal?.aborted) return new LocalStackError("the Firebase Auth emulator was stopped while starting");
        if (child.exitCode === null && child.signalCode === null) return null;
        const last = output.trim().split("\n").filter(Boolean).at(-1) ?? "no output";
        return new LocalStackError(`the Firebase Auth emulator stopped while starting: ${last.trim()}`);
      },
      timedOut: () => new LocalStackError(`the Firebase Auth emulator did not start within ${READY_TIMEOUT_MS / 1000} s`),
    });
  } catch (error) {
    await (signal?.aborted ? abandonChild(child, workDir) : stop());
    throw error;
  }
  return { address: `${host}:${port}`, stop };
}

/**
 * Stops an emulator that was asked to stop before it ever answered (npm start stopped while
 * starting). It has served nothing, so its accounts are still what it imported, and exporting them
 * is pointless; its clean shutdown would moreover wait until it has finished starting (seconds of
 * CPU during which it handles no signal). So it is killed, unless it has already begun exporting
 * (on a Ctrl-C of its own, from the terminal): an export cut short can lose the accounts (the CLI
 * removes the old export before it moves the new one in place). It is frozen while that is checked,
 * so that it cannot begin meanwhile: an export begins by making its `firebase-export-*` directory in
 * the CLI's working directory, before it touches the accounts.
 */
async function abandonChild(child: ChildProcess, workDir: string): Promise<void> {
  if (gone(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  signal(child, "SIGSTOP");
  const exporting = (await readdir(workDir).catch(() => [] as string[])).some((name) => name.startsWith("firebase-export-"));
  if (!exporting) {
    signal(child, "SIGKILL");
    return exited;
  }
  signal(child, "SIGCONT");
  // No signal of ours: a second SIGINT makes the CLI exit at once, export or not.
  const force = setTimeout(() => signal(child, "SIGKILL"), 15_000);
  await exited;
  clearTimeout(force);
}

const gone = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

// By pid, not child.kill: under Deno, a ChildProcess takes only its first kill() (later ones, such
// as the SIGKILL after a SIGINT that was not enough, are silently dropped).
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (gone(child)) return;
  try {
    process.kill(child.pid!, name);
  } catch {
    // exited meanwhile
  }
}

// SIGINT is the CLI's own "stop": it exports the accounts, then exits.
function stopChild(child: ChildProcess): Promise<void> {
  if (gone(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => signal(child, "SIGKILL"), 15_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    signal(child, "SIGINT");
  });
}
