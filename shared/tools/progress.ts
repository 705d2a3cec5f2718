// Progress of a long job for the person running it: one redrawn bar on a terminal; elsewhere (CI,
// logs, pipes) plain lines, throttled so that a log of a long run stays readable.
import { count } from "./count.ts";

export interface ProgressSink {
  isTTY: boolean;
  write(text: string): void;
}

export interface Progress {
  done: number;
  total: number;
}

export interface ProgressReporter {
  update(progress: Progress): void;
  /** Shows the latest state if it was throttled away, and ends the bar's line. */
  finish(): void;
}

const BAR_WIDTH = 20;
const BAR_INTERVAL_MS = 100;
const LINE_INTERVAL_MS = 1000;

export function progressReporter(sink: ProgressSink, now: () => number = Date.now): ProgressReporter {
  const interval = sink.isTTY ? BAR_INTERVAL_MS : LINE_INTERVAL_MS;
  let latest: Progress | undefined;
  let shown: Progress | undefined;
  // The first update shows at once, so a person sees the job has started.
  let shownAt = -Infinity;

  const show = (progress: Progress) => {
    sink.write(sink.isTTY ? `\r${bar(progress)}` : `${line(progress)}\n`);
    shown = progress;
    shownAt = now();
  };

  return {
    update(progress) {
      latest = progress;
      if (now() - shownAt >= interval) show(progress);
    },
    finish() {
      if (latest && latest !== shown) show(latest);
      if (sink.isTTY && shown) sink.write("\n");
      latest = shown = undefined;
    },
  };
}

function bar(progress: Progress): string {
  const filled = Math.round((percent(progress) / 100) * BAR_WIDTH);
  const counts = `${count(progress.done)}/${count(progress.total)}`;
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${percent(progress)}% ${counts}`;
}

function line(progress: Progress): string {
  return `progress: ${progress.done}/${progress.total} (${percent(progress)}%)`;
}

function percent({ done, total }: Progress): number {
  return total <= 0 ? 100 : Math.min(100, Math.floor((done / total) * 100));
}
