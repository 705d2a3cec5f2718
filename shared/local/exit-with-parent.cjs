// Preloaded (`node --require`) into a Node child that we start with a pipe on its stdin, such as the
// Firebase CLI: it must not outlive us. Linux would tell a child of its parent's death
// (PR_SET_PDEATHSIG), but neither Node nor Deno can ask for it; what every OS does do is close the
// pipe when the last process holding its other end ends, however it ends (SIGKILL, OOM). So at the
// end of stdin this process interrupts itself: SIGINT is the Firebase CLI's own clean shutdown,
// which exports the emulator's accounts. If that hangs, it exits anyway after GRACE_MS.
//
// It also lets only the first shutdown signal through to the CLI. The CLI takes its first SIGINT,
// SIGTERM, SIGHUP or SIGQUIT for "shut down cleanly" (export, then exit) and a second one for "exit
// now", export or not; yet a stop sends it more than one: a Ctrl-C or a SIGTERM to the process
// group reaches it directly, and then again from our parent, which stops the functions first and
// the emulator after them. Later signals are dropped; GRACE_MS after the first, it exits anyway.
// Plain CommonJS, not TypeScript: Node 20 runs it as it is.
"use strict";

const GRACE_MS = 15_000;
const SHUTDOWN_SIGNALS = new Set(["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"]);

// Node delivers a signal by emitting it on `process`, to the listeners the CLI adds later; a signal
// with no listener yet (the CLI still loading) keeps its default action, untouched by this.
let signalled = false;
const emit = process.emit;
process.emit = function (event, ...args) {
  if (SHUTDOWN_SIGNALS.has(event)) {
    if (signalled) return false;
    signalled = true;
    setTimeout(() => process.exit(1), GRACE_MS).unref();
  }
  return emit.call(this, event, ...args);
};

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
