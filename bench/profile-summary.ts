// Where a server's CPU time goes, from a V8 .cpuprofile (`deno run --cpu-prof`): each sample is
// given to a category, by its stack.
// Time is weighed by the samples' intervals.
// - attributed: the first frame from the leaf up that is ours or a library's (jose, zod, postgres.js,
//   shared/...) names the category, so the runtime's work done for a caller (a Response built by
//   our code, a socket write by the driver) counts for that caller; a stack with none of them (the
//   runtime's own HTTP server, sockets, GC, idle) goes by its leaf.
// - inclusive: the samples with a frame of the category anywhere in the stack (for ours and the
//   libraries'), the time a bare handler would not spend without that layer.
// JSON.parse and JSON.stringify are V8 builtins the profiler does not show as frames: their time is
// their caller's. The profiler samples wall-clock time on the main thread: a synchronous socket
// write (writeBuffer, the driver's) also counts the moments the kernel gives the core to Postgres
// meanwhile; and under the profiler each console.log also goes to V8's inspector, so logging reads
// higher here than it costs without it.

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds between samples. */
  timeDeltas: number[];
}

export interface CategoryTime {
  category: string;
  /** Milliseconds attributed to the category. */
  attributed: number;
  /** Milliseconds with the category anywhere in the stack; null for the runtime's categories. */
  inclusive: number | null;
}

export interface ProfileSummary {
  /** The samples' time span, milliseconds. */
  ms: number;
  /** Of that, milliseconds not idle. */
  busyMs: number;
  categories: CategoryTime[];
  /** The functions with the most time as the leaf: "name (file:line)" and milliseconds. */
  hottest: { frame: string; ms: number }[];
}

type Frame = CpuProfile["nodes"][number]["callFrame"];

// Ours and the libraries', most specific first; their frames are found anywhere in a stack.
const LAYERS: [string, (url: string) => boolean][] = [
  ["JWT verification (jose, shared/auth)", (url) => url.includes("/jose/") || url.includes("/shared/auth/")],
  ["validation (zod, validation.ts, schemas.ts)", (url) =>
    url.includes("/zod/") || url.includes("/shared/http/validation.ts") || url.includes("/shared/api/schemas.ts")],
  ["logging (shared/http/log.ts)", (url) => url.includes("/shared/http/log.ts")],
  ["Fernet (shared/crypto)", (url) => url.includes("/shared/crypto/")],
  ["postgres.js driver", (url) => /\/postgres(-array)?\//.test(url) && !url.includes("/shared/")],
  ["our database layer (shared/db)", (url) => url.includes("/shared/db/")],
  ["endpoint code (its store, function, timestamps)", (url) =>
    /\/shared\/(users|dexcom-tokens|dexcom|glucose)\//.test(url) || url.includes("/shared/api/timestamps.ts")],
  ["routing, CORS, errors, body (shared/http, shared/app)", (url) => url.includes("/shared/http/") || url.includes("/shared/app/")],
  ["the bare handler's own code (bench/bare-server.ts)", (url) => url.includes("/bench/bare-server.ts")],
];

// The runtime's, by the leaf of a stack with none of the above.
const RUNTIME: [string, (frame: Frame) => boolean][] = [
  ["Deno HTTP server (ext:deno_http, ext:deno_fetch)", (f) => /^ext:deno_(http|fetch|net)/.test(f.url)],
  ["node compatibility: sockets, streams, timers (ext:deno_node)", (f) => f.url.startsWith("ext:deno_node") || f.url.startsWith("node:")],
  ["console (ext:deno_console)", (f) => f.url.startsWith("ext:deno_console")],
  ["garbage collector", (f) => f.functionName === "(garbage collector)"],
  ["idle (waiting for I/O)", (f) => f.functionName === "(idle)"],
  ["native, outside JavaScript ((program))", (f) => f.functionName === "(program)"],
];
const OTHER = "other runtime JavaScript (ext:core, ext:deno_web, ...)";

/** Summarises the samples taken from `fromUs` (profile clock, microseconds) on; all by default. */
export function summariseProfile(profile: CpuProfile, fromUs = -Infinity): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);

  const attributed = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const self = new Map<string, number>();
  let at = profile.startTime;
  let first = Infinity;
  let idle = 0;
  for (const [i, sample] of profile.samples.entries()) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromUs) continue;
    first = Math.min(first, at);
    // A sample stands for the time until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const leaf = byId.get(sample)!.callFrame;
    if (leaf.functionName === "(idle)") idle += us;
    add(self, `${leaf.functionName || "(anonymous)"} (${shortUrl(leaf.url)}:${leaf.lineNumber + 1})`, us);

    let category: string | undefined;
    const seen = new Set<string>();
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const layer = LAYERS.find(([, matches]) => matches(byId.get(id)!.callFrame.url))?.[0];
      if (layer === undefined) continue;
      category ??= layer;
      seen.add(layer);
    }
    add(attributed, category ?? RUNTIME.find(([, matches]) => matches(leaf))?.[0] ?? OTHER, us);
    for (const layer of seen) add(inclusive, layer, us);
  }
  const ms = (us: number | undefined) => (us ?? 0) / 1000;
  const categories = [...LAYERS.map(([name]) => name), ...RUNTIME.map(([name]) => name), OTHER].map((category) => ({
    category,
    attributed: ms(attributed.get(category)),
    inclusive: LAYERS.some(([name]) => name === category) ? ms(inclusive.get(category)) : null,
  }));
  const hottest = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16).map(([frame, us]) => ({ frame, ms: ms(us) }));
  const span = first === Infinity ? 0 : ms(profile.endTime - first);
  return { ms: span, busyMs: span - ms(idle), categories, hottest };
}

/**
 * The summary as lines of text: each category's share of the busy time (all but idle) and, given
 * the requests answered meanwhile, its main-thread microseconds per request.
 */
export function formatSummary(summary: ProfileSummary, requests: number): string[] {
  const pct = (ms: number | null) => (ms === null ? "" : `${((ms / summary.busyMs) * 100).toFixed(1)}%`);
  const perRequest = (ms: number | null) => (ms === null ? "" : ((ms * 1000) / requests).toFixed(1));
  const lines = [
    `busy ${(summary.busyMs / 1000).toFixed(2)} s of ${(summary.ms / 1000).toFixed(2)} s, ${perRequest(summary.busyMs)} µs per request`,
    `${"category".padEnd(62)}${"attributed".padStart(11)}${"µs/req".padStart(8)}${"inclusive".padStart(11)}${"µs/req".padStart(8)}`,
  ];
  for (const c of summary.categories) {
    if (c.category.startsWith("idle") || (c.attributed === 0 && !c.inclusive)) continue;
    lines.push(
      `${c.category.padEnd(62)}${pct(c.attributed).padStart(11)}${perRequest(c.attributed).padStart(8)}` +
        `${pct(c.inclusive).padStart(11)}${perRequest(c.inclusive).padStart(8)}`,
    );
  }
  lines.push("hottest functions (self time, share of the busy time):");
  for (const h of summary.hottest) {
    if (h.frame.startsWith("(idle)")) continue;
    lines.push(`  ${pct(h.ms).padStart(6)}  ${h.frame}`);
  }
  return lines;
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/(node_modules|shared|bench|scripts)\//, "$1/");
}
