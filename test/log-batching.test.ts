// npm run serve and npm start write the log lines of one run of queued work in one write.
import { describe, expect, it } from "vitest";
import { batchedLines, jsonLogger } from "../shared/http/log.ts";

describe("batchedLines", () => {
  it("hands over the lines of one run of work together, in order, and later lines in a later write", async () => {
    const writes: string[] = [];
    const line = batchedLines((text) => writes.push(text));
    line("a");
    line("b");
    expect(writes).toEqual([]); // not yet: at the end of this run of work
    await Promise.resolve();
    expect(writes).toEqual(["a\nb"]);
    line("c");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(writes).toEqual(["a\nb", "c"]);
  });

  it("keeps every JSON log line whole and parseable", async () => {
    const writes: string[] = [];
    const logger = jsonLogger(batchedLines((text) => writes.push(text)));
    logger.info("request", { status: 200 });
    logger.warn("database_unavailable", { code: "57P01" });
    await Promise.resolve();
    expect(writes).toHaveLength(1);
    const lines = writes[0]!.split("\n").map((text) => JSON.parse(text));
    expect(lines.map(({ level, event }) => [level, event])).toEqual([["info", "request"], ["warn", "database_unavailable"]]);
    expect(Date.parse(lines[0].time)).toBeGreaterThan(0);
  });
});
