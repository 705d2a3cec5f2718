// Preloaded (`node --require`) into a Node child that we start with a pipe on its stdin, such as the
// Firebase CLI: it must not outlive us. Linux would tell a child of its parent's death
// (PR_SET_PDEATHSIG), but neither Node nor Deno can ask for it; what every OS does do is close the
// pipe when the last process holding its other end ends, however it ends (SIGKILL, OOM). So at the
// end of stdin this process interrupts itself: SIGINT is the Firebase CLI's own clean shutdown,
// which exports the emulator's accounts. If that hangs, it exits anyway after GRACE_MS.
// Plain CommonJS, not TypeScript: Node 20 runs it as it is.
"use strict";

const GRACE_MS = 15_000;

let leaving = false;
function leave() {
  if (leaving) return;
  leaving = true;
  // Whoever read our stdout and stderr is gone too: a write there would fail with EPIPE, which
  // the CLI takes for a crash, and it would then exit without exporting. Nobody reads them now.
  for (const stream of [process.stdout, process.stderr]) {
    stream.write = (_chunk, encoding, callback) => {
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") process.nextTick(done);
      return true;
    };
  }
  setTimeout(() => process.exit(1), GRACE_MS).unref();
  process.kill(process.pid, "SIGINT");
}

process.stdin.on("data", () => {}); // nothing is ever written; reading is what sees the end
process.stdin.once("end", leave);
process.stdin.once("error", leave);
process.stdin.once("close", leave);
// The reader of our output gone (EPIPE) means the same, if it shows before the end of stdin.
process.stdout.on("error", leave);
process.stderr.on("error", leave);
// Reading must not keep the process alive once its own work is done (a clean stop by SIGINT).
process.stdin.unref?.();
