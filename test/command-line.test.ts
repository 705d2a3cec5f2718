// The flag rules every operator command shares (shared/tools/command-line.ts); the npm side of them
// runs for real in keys-rotate.test.ts (`npm run keys:rotate --dry-run`).
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseCommandLine, UsageError } from "../shared/tools/command-line.ts";
import type { FlagSpec } from "../shared/tools/command-line.ts";
import { cleanEnv } from "./support/run.ts";
import { REPO_ROOT } from "./support/supabase-cli.ts";

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

  // `npm run keys:rotate --dryrun` (no `--`, and a typo): npm keeps npm_config_dryrun, which names
  // no flag, and the command would rotate for real. A name close to a declared flag is refused.
  it.each([
    ["--dryrun", "npm_config_dryrun", "dry-run"],
    ["--dry", "npm_config_dry", "dry-run"],
    ["--dry-runs", "npm_config_dry_runs", "dry-run"],
    ["--dry-run-only", "npm_config_dry_run_only", "dry-run"],
    ["--drun", "npm_config_drun", "dry-run"],
    ["--dyr-run", "npm_config_dyr_run", "dry-run"],
    ["--batchsize", "npm_config_batchsize", "batch-size"],
    ["--batch", "npm_config_batch", "batch-size"],
    ["--batch-szie", "npm_config_batch_szie", "batch-size"],
    ["--Dry-Run (NPM_CONFIG_DRYRUN)", "NPM_CONFIG_DRYRUN", "dry-run"],
  ])("refuses %s, close to a flag of the command but not npm's spelling of it", (_typed, variable, meant) => {
    const message = refusal([], { [variable]: "true" });
    const typed = `--${variable.slice("npm_config_".length).toLowerCase().replace(/_/g, "-")}`;
    expect(message).toBe(
      `npm took ${typed} for itself (${variable}); did you mean --${meant}? put the command's flags after \`--\``,
    );
    // Even beside the flag spelled right, and whatever its value.
    expect(refusal(["--dry-run"], { npm_config_dry_run: "true", [variable]: "5" })).toBe(message);
  });

  it("leaves names far from every flag, npm's off values, and npm's own settings alone", () => {
    const far = { npm_config_yes: "true", npm_config_json: "true", npm_config_dr: "true", npm_config_size: "3", npm_config_run: "true" };
    expect(parse([], far).flags).toEqual({});
    expect(parse([], { npm_config_dryrun: "", npm_config_batch: "false" }).flags).toEqual({});
    // Set by npm on every run, never typed: `user` is a prefix of user_agent and userconfig.
    const npmOwn = { npm_config_user_agent: "npm/11.19.1 node/v20.20.2 linux x64 workspaces/false", npm_config_userconfig: "/root/.npmrc" };
    expect(parse([], npmOwn).flags).toEqual({});
  });

  it("is not tripped by any variable a real `npm run` sets, for keys:rotate's flags", () => {
    // Every npm_config_* that npm exports to a script here, as `npm run env` prints them.
    const result = spawnSync("npm", ["run", "-s", "env"], { cwd: REPO_ROOT, env: cleanEnv({}), encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
    const env = Object.fromEntries(
      result.stdout.split("\n").filter((line) => /^npm_config_/i.test(line)).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    expect(Object.keys(env)).toEqual(expect.arrayContaining(["npm_config_user_agent", "npm_config_cache", "npm_config_node_gyp", "npm_config_npm_version"]));
    const keysRotate: Record<string, FlagSpec> = {
      "dry-run": { kind: "switch", fromNpm: "honour" },
      "batch-size": { kind: "value", fromNpm: "honour" },
    };
    expect(Object.fromEntries(parseCommandLine([], env, keysRotate).flags)).toEqual({});
  });
});
