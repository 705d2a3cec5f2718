// Fernet encrypt+decrypt of 1 KiB, ours under Deno (node:crypto) against Python's `cryptography`
// on the same key and plaintext, in the same run. One op is one encrypt plus one decrypt. The
// headline figure awaits ops one at a time, as Python runs them; a second figure keeps several in
// flight, as a server with concurrent requests would. Our work is synchronous, so the two should
// agree: a gap between them would mean an await that waits on something other than the CPU.
import { decrypt, encrypt, generateKey, importFernetKey } from "../shared/crypto/fernet.ts";
import type { FernetKey } from "../shared/crypto/fernet.ts";
import { withChild } from "./child.ts";

const SECONDS = 2.5;
const WARM_UP_SECONDS = 0.3;
const PLAINTEXT_BYTES = 1024;
const IN_FLIGHT = 16;

interface Result {
  ops: number;
  seconds: number;
}

export async function benchFernet(): Promise<void> {
  const keyText = generateKey();
  const key = await importFernetKey(keyText);
  const plaintext = crypto.getRandomValues(new Uint8Array(PLAINTEXT_BYTES));

  await run(key, plaintext, WARM_UP_SECONDS, 1);
  const sequential = rate(await run(key, plaintext, SECONDS, 1));
  const concurrent = rate(await run(key, plaintext, SECONDS, IN_FLIGHT));
  const python = await runPython(keyText, plaintext);

  console.log(`fernet encrypt+decrypt, ${PLAINTEXT_BYTES} B plaintext, ${SECONDS} s per run`);
  line(`ours, Deno ${Deno.version.deno} node:crypto, one at a time`, `${format(sequential)} ops/s`);
  line(`ours, ${IN_FLIGHT} in flight`, `${format(concurrent)} ops/s`);
  if (python === null) {
    console.log("  python: skipped, python3 with the cryptography package is not available");
    return;
  }
  const pythonRate = rate(python);
  line(`python cryptography ${python.version}`, `${format(pythonRate)} ops/s`);
  line("ratio ours/python, one at a time", `${(sequential / pythonRate).toFixed(2)}x`.padStart(9));
  line(`ratio ours/python, ${IN_FLIGHT} in flight`, `${(concurrent / pythonRate).toFixed(2)}x`.padStart(9));
}

async function run(key: FernetKey, plaintext: Uint8Array, seconds: number, inFlight: number): Promise<Result> {
  let ops = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const opened = await decrypt(key, await encrypt(key, plaintext));
      if (opened.length !== plaintext.length) throw new Error("fernet round trip lost bytes");
      ops++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { ops, seconds: (performance.now() - start) / 1000 };
}

// The key goes over stdin, never argv; Python times itself so its start-up is not counted.
async function runPython(key: string, plaintext: Uint8Array): Promise<(Result & { version: string }) | null> {
  const script = new URL("./fernet_python.py", import.meta.url).pathname;
  const request = JSON.stringify({ key, plaintext_b64: btoa(String.fromCharCode(...plaintext)), seconds: SECONDS });
  try {
    const python = new Deno.Command("python3", { args: [script], stdin: "piped", stdout: "piped", stderr: "null" });
    const { success, stdout } = await withChild(python, async (child) => {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(request));
      await writer.close();
      return await child.output();
    });
    return success ? JSON.parse(new TextDecoder().decode(stdout)) : null;
  } catch {
    return null;
  }
}

function rate({ ops, seconds }: Result): number {
  return ops / seconds;
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(44)}${value}`);
}

function format(opsPerSecond: number): string {
  return Math.round(opsPerSecond).toLocaleString("en-US").padStart(9);
}
