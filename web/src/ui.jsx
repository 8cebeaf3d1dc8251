// Small shared pieces: formatting, buttons, tables, notices, a copy button.
import { useEffect, useState, useRef } from 'preact/hooks';
import { ApiError } from './api.js';

export const fmtInt = (n) => (n ?? 0).toLocaleString('en-US');

export function fmtNum(n, digits = 1) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(digits) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(digits) + 'k';
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

export function fmtMs(ms) {
  if (!ms) return '–';
  if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
  return ms.toFixed(ms < 10 ? 1 : 0) + ' ms';
}

export function fmtTime(t) {
  if (!t) return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 1971) return '–';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// useLoad runs load() when deps change and keeps {data, error, loading, reload}.
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const run = () => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => { if (n === seq.current) setState({ data, error: null, loading: false }); },
      (error) => { if (n === seq.current) setState({ data: null, error, loading: false }); },
    );
  };
  useEffect(run, deps);
  return { ...state, reload: run };
}

// usePoll calls fn every ms milliseconds while the page is visible.
export function usePoll(fn, ms, deps) {
  useEffect(() => {
    const id = setInterval(() => { if (!document.hidden) fn(); }, ms);
    return () => clearInterval(id);
  }, deps);
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : null;
  return (
    <div class="notice error" role="alert">
      <strong>{e && e.status === 403 ? 'Not allowed' : 'Error'}</strong> {error.message}
      {e && e.code ? <span class="muted"> ({e.code})</span> : null}
      {e && e.traceId ? <span class="muted mono"> trace {e.traceId}</span> : null}
    </div>
  );
}

export function Loading({ what }) {
  return <p class="muted" aria-busy="true">Loading {what || ''}…</p>;
}

export function Badge({ kind, children }) {
  return <span class={'badge ' + (kind || '')}>{children}</span>;
}

const statusKinds = {
  up: 'ok', closed: 'ok', succeeded: 'ok', ok: 'ok', true: 'ok',
  down: 'bad', open: 'bad', failed: 'bad', error: 'bad', denied: 'bad', revoked: 'bad', false: 'bad',
  half_open: 'warn', running: 'info', queued: 'warn', canceled: 'muted', unknown: 'muted', expired: 'muted',
};

export function Status({ value }) {
  const v = String(value);
  return <Badge kind={statusKinds[v] || ''}>{v.replace('_', ' ')}</Badge>;
}

export function Copy({ text, label }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    } catch {
      setDone(false);
    }
  };
  return <button type="button" class="btn small" onClick={copy} data-copy>{done ? 'Copied' : (label || 'Copy')}</button>;
}

export function Card({ title, actions, children, class: cls }) {
  return (
    <section class={'card ' + (cls || '')}>
      {(title || actions) && <header class="card-head"><h2>{title}</h2><div class="actions">{actions}</div></header>}
      {children}
    </section>
  );
}

export function Stat({ label, value, sub }) {
  return (
    <div class="stat">
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {sub ? <div class="stat-sub muted">{sub}</div> : null}
    </div>
  );
}

// Table renders rows with columns [{key, label, render?, num?}]. Wide tables scroll inside
// their box on small screens.
export function Table({ columns, rows, empty, rowKey }) {
  if (!rows || rows.length === 0) return <p class="muted empty">{empty || 'Nothing yet.'}</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead><tr>{columns.map((c) => <th key={c.key} class={c.num ? 'num' : ''} scope="col">{c.label}</th>)}</tr></thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={rowKey ? rowKey(r) : i}>
              {columns.map((c) => <td key={c.key} class={c.num ? 'num' : ''} data-label={c.label}>{c.render ? c.render(r) : r[c.key]}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// Field wraps a labelled form control.
export function Field({ label, hint, children }) {
  return (
    <label class="field">
      <span class="field-label">{label}</span>
      {children}
      {hint ? <span class="field-hint muted">{hint}</span> : null}
    </label>
  );
}

// Pager pages with the API's opaque cursors: a stack of the cursors of pages seen.
export function usePager() {
  const [stack, setStack] = useState(['']);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length,
    next: (c) => c && setStack((s) => [...s, c]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    reset: () => setStack(['']),
  };
}

export function Pager({ pager, next }) {
  return (
    <div class="pager">
      <button class="btn small" disabled={pager.page <= 1} onClick={pager.prev}>← Newer</button>
      <span class="muted">Page {pager.page}</span>
      <button class="btn small" disabled={!next} onClick={() => pager.next(next)}>Older →</button>
    </div>
  );
}

// download saves text as a file.
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
