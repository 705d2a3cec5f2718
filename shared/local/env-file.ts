// The `.env` file at the repository root, read by every local command (`npm start`, `npm run serve`,
// the operator commands) before it builds its configuration; a variable already set in the
// environment wins. Deno's @std/dotenv is not among our dependencies, and the rules are few, so this
// is a small strict parser: one mistake is one line naming the file and line, never a value (the
// file holds secrets).
import { readFile } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Where the local commands look for their env file: `.env` at the repository root, whatever the cwd. */
export const DEFAULT_ENV_FILE = fileURLToPath(new URL("../../.env", import.meta.url));

/**
 * Set only by tests: the env file to read instead of the repository's `.env`, so that a test never
 * writes (or depends on) a developer's real one. A path that does not exist means "no env file".
 */
export const ENV_FILE_OVERRIDE = "DMS_ENV_FILE";

/** A malformed env file, or one that cannot be read. The message names the file and line, never a value. */
export class EnvFileError extends Error {
  override name = "EnvFileError";
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ESCAPES: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };

/**
 * Parses the text of an env file into `{NAME: value}`. The rules, one assignment a line:
 * - blank lines and lines starting with `#` are skipped; a leading `export ` is allowed;
 * - `NAME=value`, NAME being letters, digits and `_` (not starting with a digit), with spaces
 *   allowed around `=`;
 * - an unquoted value runs to the end of the line or to a comment (`#` at its start or after a
 *   space), surrounding spaces dropped; a `#` inside the value, as in `a#b`, is kept;
 * - `'single quotes'` take everything literally; `"double quotes"` understand `\n`, `\r`, `\t`,
 *   `\"` and `\\`; after the closing quote only spaces and a `# comment` may follow;
 * - no multi-line values and no `${VAR}` expansion: such text is taken literally or refused.
 * Throws EnvFileError (`<file> line <n>: <what is wrong>`) for the first malformed line, or for a
 * name set twice.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lineOf: Record<string, number> = {};
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  lines.forEach((raw, index) => {
    const number = index + 1;
    const fail = (what: string): never => {
      throw new EnvFileError(`${file} line ${number}: ${what}`);
    };
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const assignment = line.replace(/^export\s+/, "");
    const equals = assignment.indexOf("=");
    if (equals < 0) fail("expected NAME=value");
    const name = assignment.slice(0, equals).trim();
    // The text before `=` is not echoed unless it is a proper name: it might be a pasted secret.
    if (!NAME.test(name)) fail("expected NAME=value, NAME being letters, digits and _");
    if (name in lineOf) fail(`${name} is already set on line ${lineOf[name]}`);
    const value = parseValue(assignment.slice(equals + 1).trim());
    if (typeof value !== "string") fail(`${name}: ${value.problem}`);
    values[name] = value as string;
    lineOf[name] = number;
  });
  return values;
}

/** The value after `=` (already trimmed), or what is wrong with it, in words that never quote it. */
function parseValue(text: string): string | { problem: string } {
  const quote = text[0];
  if (quote !== '"' && quote !== "'") {
    // An unquoted value ends at a comment: `#` at its start or after a space.
    const comment = text.search(/(^|\s)#/);
    return (comment < 0 ? text : text.slice(0, comment)).trim();
  }
  let value = "";
  for (let i = 1; i < text.length; i++) {
    const char = text[i]!;
    if (char === quote) {
      const rest = text.slice(i + 1).trim();
      if (rest !== "" && !rest.startsWith("#")) return { problem: "unexpected text after the closing quote" };
      return value;
    }
    if (char === "\\" && quote === '"') {
      const escaped = ESCAPES[text[i + 1] ?? ""];
      if (escaped === undefined) return { problem: 'unknown escape in double quotes (use \\n, \\r, \\t, \\" or \\\\)' };
      value += escaped;
      i++;
    } else {
      value += char;
    }
  }
  return { problem: `the ${quote === '"' ? "double" : "single"} quote is not closed on this line` };
}

/**
 * Reads the env file (DMS_ENV_FILE, else `.env` at the repository root): `{NAME: value}`, or `{}`
 * when there is no such file. Throws EnvFileError when it cannot be read or is malformed.
 */
export async function readEnvFile(env: Record<string, string | undefined> = process.env): Promise<Record<string, string>> {
  const file = env[ENV_FILE_OVERRIDE] || DEFAULT_ENV_FILE;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return {};
    throw new EnvFileError(`${file} cannot be read (${code ?? "error"})`);
  }
  return parseEnvFile(text, file);
}

/**
 * Loads the env file into this process's environment, each variable only when the environment does
 * not already have it (set, even to "", wins), so that everything built from the environment
 * afterwards, child processes included, sees it. Returns the names it set. On an EnvFileError it
 * prints `<prefix>: <message>` to stderr and exits 1: a command never runs half-configured.
 */
export async function loadEnvFile(prefix: string): Promise<string[]> {
  let values: Record<string, string>;
  try {
    values = await readEnvFile(process.env);
  } catch (error) {
    if (!(error instanceof EnvFileError)) throw error;
    console.error(`${prefix}: ${error.message}`);
    process.exit(1);
  }
  const loaded = Object.keys(values).filter((name) => process.env[name] === undefined);
  for (const name of loaded) process.env[name] = values[name];
  return loaded;
}
