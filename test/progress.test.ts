import { describe, expect, it } from "vitest";
import { progressReporter } from "../shared/tools/progress.ts";

function recorder(isTTY: boolean) {
  let clock = 0;
  const written: string[] = [];
  const reporter = progressReporter({ isTTY, write: (text) => written.push(text) }, () => clock);
  return { reporter, written, at: (ms: number) => (clock = ms) };
}

describe("progress reporter", () => {
  it("writes plain lines at most once a second, and the last state when finished", () => {
    const { reporter, written, at } = recorder(false);
    at(0);
    reporter.update({ done: 500, total: 10_000 });
    at(400);
    reporter.update({ done: 1000, total: 10_000 });
    at(1000);
    reporter.update({ done: 4500, total: 10_000 });
    at(1500);
    reporter.update({ done: 10_000, total: 10_000 });
    reporter.finish();
    expect(written).toEqual([
      "progress: 500/10000 (5%)\n",
      "progress: 4500/10000 (45%)\n",
      "progress: 10000/10000 (100%)\n",
    ]);
  });

  it("redraws one bar line on a terminal and ends it when finished", () => {
    const { reporter, written, at } = recorder(true);
    at(0);
    reporter.update({ done: 4500, total: 10_000 });
    at(50);
    reporter.update({ done: 5000, total: 10_000 });
    at(200);
    reporter.update({ done: 10_000, total: 10_000 });
    reporter.finish();
    expect(written).toEqual([
      "\r[#########-----------] 45% 4,500/10,000",
      "\r[####################] 100% 10,000/10,000",
      "\n",
    ]);
  });

  it("writes nothing when there was nothing to do", () => {
    const { reporter, written } = recorder(true);
    reporter.finish();
    expect(written).toEqual([]);
  });
});
