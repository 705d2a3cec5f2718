/**
 * Resolves once `GET url` answers 2xx. Polls every 100 ms; rejects with the error `giveUp` returns
 * as soon as it returns one (the process behind the URL died, say), or with `timedOut()` at the end.
 */
export async function untilAnswers(
  url: string,
  options: { timeoutMs: number; giveUp?: () => Error | null; timedOut: () => Error },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    const reason = options.giveUp?.();
    if (reason) throw reason;
    try {
      // A server that takes the connection but never answers must not outlast the deadline.
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw options.timedOut();
}
