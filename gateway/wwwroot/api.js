// The gateway's HTTP/JSON API (gRPC JSON transcoding of protos/kosmos2/v1/kosmos2.proto): plain fetch, streams read as
// line-delimited JSON so every delta and entity is handled the moment it arrives.

const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
  'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** A refused or failed call: the gRPC status name, its message, and the HTTP status it came with. */
export class ApiError extends Error {
  constructor(code, message, httpStatus) {
    super(`${STATUS_NAMES[code] ?? `status ${code}`}: ${message}`);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

function headers(apiKey) {
  const h = { 'Content-Type': 'application/json' };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

/** The body of a refused call ({code, message}) as an ApiError; a body that is not JSON keeps the HTTP status. */
async function refusal(response) {
  const body = await response.text();
  try {
    const status = JSON.parse(body);
    return new ApiError(status.code ?? 2, status.message ?? body, response.status);
  } catch {
    return new ApiError(2, `HTTP ${response.status} ${response.statusText}: ${body.slice(0, 200)}`, response.status);
  }
}

/** A unary call: the response message, or an ApiError. */
export async function call(method, path, apiKey, body) {
  const response = await fetch(path, { method, headers: headers(apiKey), body: body && JSON.stringify(body) });
  if (!response.ok) throw await refusal(response);
  return response.json();
}

/**
 * A server-streaming call: onMessage gets each GenerateResponse as it arrives. An error after the stream began comes as
 * a status line ({code, message}) and is thrown as an ApiError.
 */
export async function stream(path, apiKey, body, onMessage) {
  const response = await fetch(path, { method: 'POST', headers: headers(apiKey), body: JSON.stringify(body) });
  if (!response.ok) throw await refusal(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  const handle = (line) => {
    if (!line.trim()) return;
    const message = JSON.parse(line);
    if (message.delta === undefined && message.entity === undefined && message.result === undefined
        && message.restart === undefined && message.code !== undefined) {
      throw new ApiError(message.code, message.message ?? '', response.status);
    }
    onMessage(message);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      handle(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
  handle(pending + decoder.decode());
}

/** The bytes of a File as base64 (proto3 JSON's form of `bytes`). */
export async function base64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
