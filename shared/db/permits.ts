// At most `size` operations on the driver at once; the others wait here, first come first served,
// and a waiter whose deadline passes leaves the line without ever reaching the driver. (p-queue was
// tried: it frees a slot when a running task's signal aborts, while the driver still holds the
// connection, and keeps aborted waiters in line; neither fits.)

export interface Permits {
  /** Resolves with a release function once a permit is free; rejects with `signal.reason` if the signal aborts first. */
  acquire(signal: AbortSignal): Promise<() => void>;
}

export function permits(size: number): Permits {
  let free = size;
  const waiting: { grant: (release: () => void) => void }[] = [];

  const release = () => {
    const next = waiting.shift();
    if (next) next.grant(once(release));
    else free++;
  };

  return {
    acquire(signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (free > 0) {
        free--;
        return Promise.resolve(once(release));
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          grant: (release: () => void) => {
            signal.removeEventListener("abort", leave);
            resolve(release);
          },
        };
        const leave = () => {
          waiting.splice(waiting.indexOf(waiter), 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", leave, { once: true });
        waiting.push(waiter);
      });
    },
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
