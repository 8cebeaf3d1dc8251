// The console's only way to the server: same-origin fetch with the caller's bearer token.
// The token lives in this tab's sessionStorage (gone when the tab closes), never in a URL or
// a cookie.

const TOKEN = 'autoglm.token';

export function getToken() {
  try { return sessionStorage.getItem(TOKEN) || ''; } catch { return ''; }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN, token);
    else sessionStorage.removeItem(TOKEN);
  } catch { /* storage disabled: the token lasts until the page reloads */ }
}

// ApiError carries the server's error code, message and trace id.
export class ApiError extends Error {
  constructor(status, code, message, traceId) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.traceId = traceId || '';
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = getToken();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// UNAUTHORIZED is dispatched on window when the server refuses the stored credential (revoked,
// expired, its user disabled): the console then signs out.
export const UNAUTHORIZED = 'autoglm:unauthorized';

async function errorOf(res) {
  const trace = res.headers.get('X-Trace-Id') || '';
  if (res.status === 401 && getToken()) setTimeout(() => dispatchEvent(new Event(UNAUTHORIZED)), 0);
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (body && body.error) return new ApiError(res.status, body.error.code, body.error.message, trace);
  if (body && body.code) return new ApiError(res.status, body.code, body.message, body.trace_id || trace);
  return new ApiError(res.status, 'http_' + res.status, res.statusText, trace);
}

// call sends a native request and returns the envelope's data.
export async function call(method, path, body, opts = {}) {
  const init = { method, headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : {}), signal: opts.signal, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await errorOf(res);
  const env = await res.json();
  return env && 'data' in env && 'success' in env ? env.data : env;
}

export const get = (path, opts) => call('GET', path, undefined, opts);

// query builds a query string from the non-empty values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// stream POSTs (or GETs, without a body) and hands each server-sent event to onEvent as
// {event, data, id}. It resolves with the response when the stream ends. EventSource cannot
// send an Authorization header, so the stream is read with fetch.
export async function stream(method, path, body, onEvent, opts = {}) {
  const init = { method, headers: headers({ Accept: 'text/event-stream', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(opts.headers || {}) }), signal: opts.signal, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await errorOf(res);
  if (opts.onResponse) opts.onResponse(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { event: 'message', data: [], id: '' };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (ev.data.length) onEvent({ event: ev.event, data: ev.data.join('\n'), id: ev.id });
        ev = { event: 'message', data: [], id: ev.id };
        continue;
      }
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let val = i < 0 ? '' : line.slice(i + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'data') ev.data.push(val);
      else if (field === 'event') ev.event = val;
      else if (field === 'id') ev.id = val;
    }
  }
  return res;
}
