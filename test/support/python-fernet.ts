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

/**
 * For each text, whether Python's `Fernet(text)` accepts it as a key and, if so, the key's canonical
 * spelling (`urlsafe_b64encode` of the bytes Python read), else null. Over stdin, as above.
 */
export function readKeysInPython(texts: string[]): (string | null)[] {
  const script = [
    "import base64, json, sys",
    "from cryptography.fernet import Fernet",
    "def read(text):",
    "    try:",
    "        Fernet(text)",
    "    except Exception:",
    "        return None",
    "    return base64.urlsafe_b64encode(base64.urlsafe_b64decode(text)).decode()",
    "print(json.dumps([read(t) for t in json.load(sys.stdin)]))",
  ].join("\n");
  const result = spawnSync("python3", ["-c", script], { input: JSON.stringify(texts), encoding: "utf8" });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as (string | null)[];
}
