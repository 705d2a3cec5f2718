/** A problem a person can act on, told in one line; `npm start` prints it and exits 1. */
export class LocalStackError extends Error {
  override name = "LocalStackError";
}

/** `npm start` was asked to stop (Ctrl-C, SIGTERM) before it was ready; what it started is stopped. */
export class StoppedWhileStarting extends Error {
  override name = "StoppedWhileStarting";
  constructor() {
    super("stopped while starting");
  }
}
