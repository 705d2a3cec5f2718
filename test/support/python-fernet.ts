import { spawnSync } from "node:child_process";

export function hasPythonCryptography(): boolean {
  return spawnSync("python3", ["-c", "import cryptography.fernet"], { stdio: "ignore" }).status === 0;
}

// The key and tokens go over stdin, never argv, where other local users could read them.
export function decryptInPython(key: string, tokens: string[]): string[] {
  const script = [
    "import base64, json, sys",
    "from cryptography.fernet import Fernet",
    "request = json.load(sys.stdin)",
    "f = Fernet(request['key'])",
    "print(json.dumps([base64.b64encode(f.decrypt(t)).decode() for t in request['tokens']]))",
  ].join("\n");
  const result = spawnSync("python3", ["-c", script], { input: JSON.stringify({ key, tokens }), encoding: "utf8" });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}
