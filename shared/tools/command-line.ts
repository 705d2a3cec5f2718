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
// - a flag npm took whose name is close to one the command declares, but not npm's spelling of it
//   (`npm run keys:rotate --dryrun`: npm_config_dryrun), is a mistyped flag: refused in one line,
//   naming the flag meant. Left alone, it would do nothing, and the command would do more than
//   the person asked (a real rotation for a dry run). Close: equal once lower-cased without `-`
//   and `_`, or one a prefix of the other (at least 3 characters: `--dry`, `--dry-run-only`), or
//   at most 2 edits apart (`--dyr-run`, `--batch-szie`).
// Other flags npm took that the command does not declare cannot be told from npm's own settings,
// and are left alone: they cannot make the command do anything. Neither can the settings npm
// exports to every script itself (npm_config_user_agent, ...), which nobody types.

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

  const typo = mistypedFlag(env, Object.keys(spec));
  if (typo) {
    throw new UsageError(`npm took --${typo.typed} for itself (${typo.variable}); did you mean --${typo.meant}? ${AFTER_DASHES}`);
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

const NPM_PREFIX = "npm_config_";
// What npm exports to every script on its own (computed paths, its version, its user agent): never
// typed by a person, so never a mistyped flag, however close its name is to one (`--user`).
const NPM_OWN = new Set([
  "cache",
  "global_prefix",
  "globalconfig",
  "init_module",
  "local_prefix",
  "node_gyp",
  "npm_version",
  "prefix",
  "user_agent",
  "userconfig",
]);
const MIN_PREFIX = 3;
const MAX_EDITS = 2;

/**
 * The first npm_config_* variable (any case) holding a value that is not npm's "off", whose name
 * is close to a declared flag without being npm's spelling of any declared flag; with the flag
 * it is closest to.
 */
function mistypedFlag(
  env: Record<string, string | undefined>,
  flags: readonly string[],
): { variable: string; typed: string; meant: string } | undefined {
  const spelled = new Set(flags.map((flag) => flag.replace(/-/g, "_")));
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.toLowerCase().startsWith(NPM_PREFIX)) continue;
    const name = variable.slice(NPM_PREFIX.length).toLowerCase();
    if (spelled.has(name) || NPM_OWN.has(name)) continue;
    const held = value?.trim() ?? "";
    if (held === "" || held === "false") continue;
    let best: { flag: string; distance: number } | undefined;
    for (const flag of flags) {
      const distance = closeness(normalise(name), normalise(flag));
      if (distance !== undefined && (best === undefined || distance < best.distance)) best = { flag, distance };
    }
    if (best) return { variable, typed: name.replace(/_/g, "-"), meant: best.flag };
  }
  return undefined;
}

const normalise = (name: string) => name.toLowerCase().replace(/[-_]/g, "");

/** How far apart two normalised names are when close (0: equal or one a prefix), else undefined. */
function closeness(a: string, b: string): number | undefined {
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  if (short.length >= MIN_PREFIX && long.startsWith(short)) return 0;
  const distance = editDistance(a, b);
  return short.length >= MIN_PREFIX && distance <= MAX_EDITS ? distance : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
