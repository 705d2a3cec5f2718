// A caller's request id is kept when it is sane, so one id follows a request across systems;
// anything else (too long, odd characters that could forge log lines) is replaced.
const SANE_ID = /^[A-Za-z0-9._-]{1,128}$/;

export function requestIdFor(request: Request): string {
  const given = request.headers.get("x-request-id");
  return given !== null && SANE_ID.test(given) ? given : crypto.randomUUID();
}
