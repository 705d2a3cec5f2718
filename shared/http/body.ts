import { HttpError } from "./errors.ts";

const MAX_BODY_BYTES = 65_536;

const tooLarge = () =>
  new HttpError(413, "payload_too_large", `The request body is larger than ${MAX_BODY_BYTES} bytes.`);

/**
 * The request's JSON body, or undefined when it has none. The size limit is enforced while
 * reading, whatever content-length claims, so a client cannot make us buffer more than the limit.
 */
export async function readJsonBody(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) throw tooLarge();
  const bytes = await readLimited(request.body);
  if (bytes.length === 0) return undefined;

  const contentType = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json") {
    throw new HttpError(415, "unsupported_media_type", "The request body must be JSON (content-type: application/json).");
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new HttpError(400, "invalid_json", "The request body is not valid JSON.");
  }
}

async function readLimited(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read().catch(() => {
      // The client went away mid-body, or the server is shutting down: its fault or nobody's, not ours.
      throw new HttpError(400, "invalid_json", "The request body could not be read to its end.");
    });
    if (done) break;
    size += value.length;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
