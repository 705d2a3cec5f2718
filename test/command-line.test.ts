// The flag rules every operator command shares (shared/tools/command-line.ts); the npm side of them
// runs for real in keys-rotate.test.ts (`npm run keys:rotate --dry-run`).
import { describe, expect, it } from "vitest";
import { parseCommandLine, UsageError } from "../shared/tools/command-line.ts";
import type { FlagSpec } from "../shared/tools/command-line.ts";

const SPEC: Record<string, FlagSpec> = {
  "dry-run": { kind: "switch", fromNpm: "honour" },
  "batch-size": { kind: "value", fromNpm: "honour" },
  force: { kind: "switch", fromNpm: "refuse" },
  user: { kind: "value", fromNpm: "refuse" },
};

const parse = (argv: string[], env: Record<string, string> = {}) => {
  const line = parseCommandLine(argv, env, SPEC);
  return { flags: Object.fromEntries(line.flags), positionals: line.positionals, fromNpm: Object.fromEntries(line.fromNpm) };
};

const refusal = (argv: string[], env: Record<string, string> = {}) => {
  try {
    parseCommandLine(argv, env, SPEC);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("not refused");
};

describe("parseCommandLine", () => {
  it("reads the flags after `--`, in both value spellings, and the other arguments", () => {
    expect(parse(["--dry-run", "--batch-size", "5", "x", "--user=7"])).toEqual({
      flags: { "dry-run": true, "batch-size": "5", user: "7" },
      positionals: ["x"],
      fromNpm: {},
    });
    // A value flag last, without its value, is left for the command to judge.
    expect(parse(["--batch-size"]).flags).toEqual({ "batch-size": "" });
  });

  it("refuses unknown flags, a switch with a value, and a flag given twice differently", () => {
    expect(refusal(["--dry"])).toBe('unknown argument "--dry"');
    expect(refusal(["-n"])).toBe('unknown argument "-n"');
    expect(refusal(["--"])).toBe('unknown argument "--"');
    expect(refusal(["--dry-run=yes"])).toBe("--dry-run takes no value");
    expect(refusal(["--batch-size=1", "--batch-size", "2"])).toBe("--batch-size is given twice");
    expect(parse(["--dry-run", "--dry-run"]).flags).toEqual({ "dry-run": true });
  });

  it("honours the flags npm took for itself when they can only ask for less, and says so", () => {
    expect(parse([], { npm_config_dry_run: "true", npm_config_batch_size: "3" })).toEqual({
      flags: { "dry-run": true, "batch-size": "3" },
      positionals: [],
      fromNpm: { "dry-run": "npm_config_dry_run", "batch-size": "npm_config_batch_size" },
    });
    // npm reads its variables in any case; so does this, and npm's own lowercase one wins.
    expect(parse([], { NPM_CONFIG_DRY_RUN: "true" }).fromNpm).toEqual({ "dry-run": "NPM_CONFIG_DRY_RUN" });
    expect(parse([], { NPM_CONFIG_DRY_RUN: "true", npm_config_dry_run: "" }).flags).toEqual({});
    // Given both ways alike, it came after `--`.
    expect(parse(["--dry-run"], { npm_config_dry_run: "true" })).toMatchObject({ flags: { "dry-run": true }, fromNpm: {} });
  });

  it("takes npm's empty value (`--dry-run=false`, `--no-dry-run`) and `false` as not given", () => {
    for (const value of ["", "false", " "]) expect(parse([], { npm_config_dry_run: value, npm_config_force: value }).flags).toEqual({});
  });

  it("refuses what npm took and cannot be honoured, in one line that never quotes the value", () => {
    expect(refusal([], { npm_config_force: "true" })).toBe(
      "npm took --force for itself (npm_config_force) and did not pass it on: put the command's flags after `--`",
    );
    expect(refusal([], { npm_config_user: "someone" })).toMatch(/^npm took --user for itself \(npm_config_user\)/);
    // `npm run x --batch-size 5`: npm keeps `true` and passes "5" on as an argument.
    expect(refusal(["5"], { npm_config_batch_size: "true" })).toBe(
      "npm took --batch-size for itself and passed its value on as a separate argument: put the command's flags after `--`",
    );
    expect(refusal([], { npm_config_dry_run: "1" })).toBe("npm_config_dry_run (npm's --dry-run) is neither true nor false");
    expect(refusal(["--batch-size", "4"], { npm_config_batch_size: "3" })).toBe(
      "--batch-size is given twice, differently: to npm (npm_config_batch_size) and after --",
    );
    expect(refusal([], { NPM_CONFIG_DRY_RUN: "true", Npm_Config_Dry_Run: "1" })).toBe(
      "npm's npm_config_dry_run is set more than once, differently",
    );
    for (const message of [refusal([], { npm_config_user: "someone" }), refusal([], { npm_config_dry_run: "secret" })]) {
      expect(message).not.toMatch(/someone|secret/);
    }
  });

  it("lets a refused flag through when it also came after `--`, and ignores npm settings of other names", () => {
    expect(parse(["--force"], { npm_config_force: "true" }).flags).toEqual({ force: true });
    expect(parse([], { npm_config_yes: "true", npm_config_json: "true", npm_config_foo: "true" }).flags).toEqual({});
  });
});
