// pgbench, for the benches that set an endpoint's rate beside that of its SQL alone.
import { outputOf } from "./child.ts";
import { withTempFile } from "./wrk.ts";

/**
 * Runs the pgbench `script` against url for `seconds` with `clients` clients (extended protocol,
 * two threads); the transactions per second, or null when pgbench is not installed or failed.
 */
export async function pgbench(url: string, script: string, options: { clients: number; seconds: number }): Promise<number | null> {
  return await withTempFile(".sql", script, async (path) => {
    try {
      const { success, stdout } = await outputOf(
        new Deno.Command("pgbench", {
          args: ["-n", "-M", "extended", "-c", String(options.clients), "-j", "2", "-T", String(options.seconds), "-f", path, url],
          stdout: "piped",
          stderr: "null",
        }),
      );
      const match = /tps = ([\d.]+)/.exec(new TextDecoder().decode(stdout));
      return success && match ? Number(match[1]) : null;
    } catch {
      return null;
    }
  });
}
