// The server's API as the page uses it: the key from sessionStorage as a bearer token, errors in
// the API's own shape turned into exceptions, and server-sent events read from a fetch body
// (EventSource cannot send an Authorization header).

const KEY = "warmserve.apiKey";
const ADMIN_KEY = "warmserve.adminKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

// The key for /admin where the server has admin keys of its own; without one, the API key.
export function adminKey() {
  return sessionStorage.getItem(ADMIN_KEY) || "";
}

function keep(name, value) {
  if (value) sessionStorage.setItem(name, value);
  else sessionStorage.removeItem(name);
}

export function setKeys(key, admin) {
  keep(KEY, key);
  keep(ADMIN_KEY, admin);
  for (const listener of keyListeners) listener(key);
}

const keyListeners = new Set();
export function onKeyChange(listener) {
  keyListeners.add(listener);
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called with the error of a 401, so the page can ask for a key.
let unauthorized = () => {};
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function headers(extra = {}, admin = false) {
  const key = (admin && adminKey()) || apiKey() || adminKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

async function failure(response, admin = false) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    const error = body.error || body.detail || body;
    message = error.message || JSON.stringify(error);
    code = error.code || null;
  } catch {
    // not JSON: keep the status line
  }
  const error = new ApiError(response.status, message, code);
  if (response.status === 401) unauthorized(error, admin);
  return error;
}

// `admin`: an /admin call, sent with the admin key when the page holds one.
export async function request(method, path, body, { signal, admin = false } = {}) {
  const type = body === undefined ? {} : { "Content-Type": "application/json" };
  const init = { method, headers: headers(type, admin), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response, admin);
  return response.status === 204 ? null : response.json();
}

// POST `body` to `path` and call onEvent(name, data) for each server-sent event until the stream ends.
export async function streamEvents(path, { method = "GET", body, signal, onEvent, onOpen }) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  if (onOpen) onOpen(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}
