// The documentation stands alone in a clone: every relative link in README.md and docs/*.md leads
// to something in this repository, and the parts of the README that restate the repository (the
// migrations table, the db:check example) say what the repository holds today.
import { existsSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { marked, type Token, type Tokens } from "marked";
import { describe, expect, it } from "vitest";
import { readMigrations } from "../shared/db/migrations.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MIGRATIONS = join(ROOT, "supabase", "migrations");

/** README.md and every docs/*.md, as paths relative to the repository. */
async function documents(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, "docs"))).filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`);
  return ["README.md", ...docs.sort()];
}

/** Every link target of a Markdown text (inline, reference and autolinks; code is not text). */
function linkTargets(markdown: string): string[] {
  const tokens = marked.lexer(markdown);
  const targets: string[] = Object.values(tokens.links).map((definition) => definition.href);
  marked.walkTokens(tokens, (token) => {
    if (token.type === "link" || token.type === "image") targets.push((token as Tokens.Link).href);
  });
  return targets;
}

/** GitHub's anchors of a Markdown text's headings: lower case, punctuation dropped, spaces as "-". */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  marked.walkTokens(marked.lexer(markdown), (token) => {
    if (token.type !== "heading") return;
    const slug = (token as Tokens.Heading).text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  });
  return result;
}

const hasScheme = (href: string) => /^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//");

/**
 * What is wrong with the relative links of the document at `file` (relative to `root`), one line
 * each: a target outside `root`, a file or folder that does not exist, an anchor with no heading.
 * `read` gives another document's text, for anchors into it.
 */
function brokenLinks(root: string, file: string, markdown: string, read: (path: string) => string): string[] {
  const problems: string[] = [];
  for (const href of linkTargets(markdown)) {
    if (hasScheme(href)) continue;
    const [rawPath = "", fragment] = href.split("#", 2);
    const path = decodeURIComponent(rawPath);
    const target = path === "" ? join(root, file) : resolve(root, dirname(file), path);
    const inside = relative(root, target);
    if (isAbsolute(path) || inside.startsWith("..") || isAbsolute(inside)) {
      problems.push(`${file}: ${href} points outside the repository`);
    } else if (!existsSync(target)) {
      problems.push(`${file}: ${href} does not exist`);
    } else if (fragment && target.endsWith(".md") && !anchors(read(target)).has(fragment)) {
      problems.push(`${file}: ${href} names no heading of ${inside}`);
    }
  }
  return problems;
}

/** The first cells of the README's migrations table (the table whose first column is "migration"). */
function migrationsTable(readme: string): string[][] {
  const tables: string[][] = [];
  marked.walkTokens(marked.lexer(readme), (token: Token) => {
    if (token.type !== "table") return;
    const table = token as Tokens.Table;
    if (table.header[0]?.text.trim() !== "migration") return;
    tables.push(table.rows.map((row) => row[0]!.text.trim().replace(/^`|`$/g, "")));
  });
  return tables;
}

describe("the documentation", () => {
  it("links only to files inside the repository, all of which exist", async () => {
    const files = await documents();
    expect(files).toContain("docs/api.md");
    const read = (path: string) => readFileSync(path, "utf8");
    const problems: string[] = [];
    let relativeLinks = 0;
    for (const file of files) {
      const markdown = await readFile(join(ROOT, file), "utf8");
      relativeLinks += linkTargets(markdown).filter((href) => !hasScheme(href)).length;
      problems.push(...brokenLinks(ROOT, file, markdown, read));
    }
    expect(problems).toEqual([]);
    // The check looked at something: the README and the reference link each other.
    expect(relativeLinks).toBeGreaterThan(10);
  });

  it("the README links the API reference, and nothing links the contract outside the repository", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    expect(linkTargets(readme)).toContain("docs/api.md");
    const naming: string[] = [];
    for (const file of await documents()) {
      if ((await readFile(join(ROOT, file), "utf8")).includes("shared/contract")) naming.push(file);
    }
    expect(naming).toEqual([]);
  });

  it("the link check finds a link outside the repository, a missing file and a missing heading", () => {
    const markdown = [
      "# Title",
      "[up](../shared/contract/http-api.md) [gone](docs/nothing.md) [anchor](#no-such-heading)",
      "[ok](#title) [readme](README.md) [web](https://example.com) `[code](../not-a-link.md)`",
      "",
      "[ref]: /etc/passwd",
    ].join("\n");
    expect(brokenLinks(ROOT, "README.md", markdown, () => markdown)).toEqual([
      "README.md: /etc/passwd points outside the repository",
      "README.md: ../shared/contract/http-api.md points outside the repository",
      "README.md: docs/nothing.md does not exist",
      "README.md: #no-such-heading names no heading of README.md",
    ]);
  });
});

describe("the README restates the repository as it is", () => {
  it("its migrations table lists every file of supabase/migrations, in order", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const tables = migrationsTable(readme);
    expect(tables).toHaveLength(1);
    const files = (await readdir(MIGRATIONS)).filter((name) => name.endsWith(".sql")).sort();
    expect(files.length).toBeGreaterThan(0);
    expect(tables[0]).toEqual(files.map((name) => name.replace(/\.sql$/, "")));
  });

  it("its db:check example names the newest migration", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const newest = (await readMigrations()).at(-1)!;
    const shown = readme.split("\n").filter((line) => line.startsWith("newest migration: "));
    expect(shown.length).toBeGreaterThan(0);
    for (const line of shown) expect(line).toBe(`newest migration: ${newest.version} ${newest.name}`);
  });

  it("the reference's /health example names the newest migration", async () => {
    const api = await readFile(join(ROOT, "docs", "api.md"), "utf8");
    const newest = (await readMigrations()).at(-1)!;
    const versions = [...api.matchAll(/"schema_version":"(\d+)"/g)].map((match) => match[1]);
    expect(versions.length).toBeGreaterThan(0);
    for (const version of versions) expect(version).toBe(newest.version);
  });
});
