// The flags of an operator command, from its arguments and from what npm kept for itself.
//
// `npm run keys:rotate --dry-run`, without `--`, never hands `--dry-run` to the script: npm reads
// every `--name` on its command line as its own configuration and passes it on only in the
// environment, as `npm_config_<name>` (dashes as underscores). Seen on npm 11.19 (and so since
// npm 7's @npmcli/config):
//
//   npm run x --dry-run          npm_config_dry_run=true      no arguments
//   npm run x --dry-run=false    npm_config_dry_run="" or unset (so does --no-dry-run)
//   npm run x --batch-size=5     npm_config_batch_size=5      no arguments
//   npm run x --batch-size 5     npm_config_batch_size=true   the argument "5"
//   npm run x -- --dry-run       (nothing)                    the argument "--dry-run"
//
// An `.npmrc` (the project's, the user's, the global one) or an `NPM_CONFIG_DRY_RUN` variable lands
// in the same place, indistinguishable. A command reading only its arguments would take the
// person's dry run for a real run. So each flag a command declares is also looked up there, and the
// rule is that the command never does more than the person asked:
// - a flag declared `fromNpm: "honour"` (one that can only make the command do less, or changes
//   nothing that matters: a dry run, a batch size) takes what npm holds: a switch held as `true` is
//   on, a value flag held with its value (`--name=value`) has it;
// - a flag declared `fromNpm: "refuse"` (one that asks for more, like a `--force`, which a stray
//   `.npmrc` line must never switch on) that only npm holds is refused in one line;
// - a value flag npm holds as `true` lost its value to a stray argument: refused;
// - npm's empty value (its `false`) and `false` mean "not given"; any other value of a switch is
//   refused; a flag given both ways must agree.
// Flags npm took that the command does not declare cannot be told from npm's own settings, and
// are left alone: they cannot make the command do anything.

const AFTER_DASHES = "put the command's flags after `--`";

export interface FlagSpec {
  /** `switch`: `--name`; `value`: `--name VALUE` or `--name=VALUE`. */
  kind: "switch" | "value";
  /** What to do when only npm's configuration holds the flag (see above). */
  fromNpm: "honour" | "refuse";
}

export interface CommandLine {
  /** Each flag given, by name without dashes: `true` for a switch, the text for a value flag (it may
   *  be empty: `--name` last, without its value; the command validates values). */
  flags: Map<string, true | string>;
  /** The arguments that are not flags, in order. */
  positionals: string[];
  /** The flags taken from npm's configuration, each with the variable it came in (`npm_config_dry_run`). */
  fromNpm: Map<string, string>;
}

/** Bad usage: the message says what is wrong in one line, and never quotes the environment; the
 *  command adds its usage line (`npm run keys:rotate -- [--dry-run] ...`). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses `argv` (the script's own arguments) against `spec` (flag name without dashes → FlagSpec)
 * and merges the flags npm took for itself from `env` (npm_config_*), by the rules above.
 * Throws UsageError for an unknown flag, a switch with a value, a flag npm kept that must not come
 * from npm or lost its value, an npm value that is neither on nor off, or a flag given twice
 * with different values.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  spec: Record<string, FlagSpec>,
): CommandLine {
  const flags = new Map<string, true | string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = arg.startsWith("--") ? spec[name]?.kind : undefined;
    if (kind === undefined) throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    if (kind === "switch" && eq >= 0) throw new UsageError(`--${name} takes no value`);
    const value = kind === "switch" ? true : eq >= 0 ? arg.slice(eq + 1) : (argv[++i] ?? "");
    if (flags.has(name) && flags.get(name) !== value) throw new UsageError(`--${name} is given twice`);
    flags.set(name, value);
  }

  const fromNpm = new Map<string, string>();
  for (const [name, { kind, fromNpm: policy }] of Object.entries(spec)) {
    const held = npmConfig(env, name);
    if (held === undefined || held.value === "" || held.value === "false") continue;
    const given = flags.get(name);
    if (kind === "value" && held.value === "true") {
      if (given !== undefined) continue; // `npm run x --name -- --name 5`: the command has its value
      throw new UsageError(`npm took --${name} for itself and passed its value on as a separate argument: ${AFTER_DASHES}`);
    }
    if (kind === "switch" && held.value !== "true") {
      throw new UsageError(`${held.variable} (npm's --${name}) is neither true nor false`);
    }
    const value = kind === "switch" ? true : held.value;
    if (given !== undefined) {
      if (given !== value) throw new UsageError(`--${name} is given twice, differently: to npm (${held.variable}) and after --`);
      continue;
    }
    if (policy === "refuse") {
      throw new UsageError(`npm took --${name} for itself (${held.variable}) and did not pass it on: ${AFTER_DASHES}`);
    }
    flags.set(name, value);
    fromNpm.set(name, held.variable);
  }
  return { flags, positionals, fromNpm };
}

// What npm holds for a flag, if anything. npm reads its variables in any case; the one npm itself
// exported (lowercase) wins over one inherited in another case, as npm's command line wins over
// the environment.
function npmConfig(env: Record<string, string | undefined>, name: string): { variable: string; value: string } | undefined {
  const variable = `npm_config_${name.replace(/-/g, "_")}`;
  const exact = env[variable];
  if (exact !== undefined) return { variable, value: exact.trim() };
  const others = Object.entries(env).flatMap(([key, value]) =>
    key.toLowerCase() === variable && value?.trim() ? [{ variable: key, value: value.trim() }] : [],
  );
  if (new Set(others.map((other) => other.value)).size > 1) {
    throw new UsageError(`npm's ${variable} is set more than once, differently`);
  }
  return others[0];
}
