// Where a first visit's main-thread time goes (report only; not a test):
//
//   node tests/console/trace.mjs N URL [URL...]
//
// For each URL, N times in turn (interleaved): a first visit in a new browser context under a
// Chrome trace (devtools.timeline, v8, loading), up to the performance mark autoglm:ready.
// Prints, per URL, the medians of the renderer main thread's CPU time (thread time) spent in
// each kind of work before the mark (self time: a task's time not spent in a nested event),
// and the network waterfall of the last run (start and end of each request, from the
// navigation's start). CHROMIUM names the browser (default /usr/bin/chromium).
import { args, launch, median, ready, warmUp } from './report.mjs';

const { n, urls, stopFloor } = await args('trace.mjs');
const browser = await launch();

// selfTimes returns the main thread's self CPU time (ms) by event name before the mark.
function selfTimes(trace) {
  const ev = JSON.parse(trace.toString()).traceEvents;
  const m = ev.find((e) => e.name === 'autoglm:ready');
  const main = ev.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === m.pid && e.args.name === 'CrRendererMain').tid;
  const xs = ev.filter((e) => e.pid === m.pid && e.tid === main && e.ph === 'X' && e.ts <= m.ts && e.tdur !== undefined)
    .sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const out = {};
  const stack = [];
  const close = (e) => { out[e.name] = (out[e.name] || 0) + e.self; };
  for (const e of xs) {
    while (stack.length && stack[stack.length - 1].ts + stack[stack.length - 1].dur <= e.ts) close(stack.pop());
    e.self = e.tdur;
    if (stack.length) stack[stack.length - 1].self -= e.tdur;
    stack.push(e);
  }
  while (stack.length) close(stack.pop());
  for (const k of Object.keys(out)) out[k] /= 1000;
  return out;
}

const out = new Map(urls.map((u) => [u, { runs: [], net: null, ready: [] }]));
await warmUp(browser, urls[0]);
for (let i = 0; i < n; i++) {
  for (const u of urls) {
    const o = out.get(u);
    const c = await browser.newContext();
    const p = await c.newPage();
    await browser.startTracing(undefined, { categories: ['toplevel', 'devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'v8.execute', 'blink', 'blink.user_timing', 'loading', '__metadata'] });
    await p.goto(u);
    await ready(p);
    o.runs.push(selfTimes(await browser.stopTracing()));
    const t = await p.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { ready: performance.getEntriesByName('autoglm:ready')[0].startTime, net: [nav, ...performance.getEntriesByType('resource')]
        .map((r) => ({ name: r.name.replace(location.origin, ''), start: r.startTime, req: r.requestStart, end: r.responseEnd, size: r.encodedBodySize })),
        parsed: nav.domInteractive, loaded: nav.domContentLoadedEventEnd, fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime };
    });
    o.ready.push(t.ready);
    o.net = t;
    await c.close();
  }
}
await browser.close();
await stopFloor();
for (const [u, o] of out) {
  const names = new Set(o.runs.flatMap((r) => Object.keys(r)));
  const rows = [...names].map((k) => [k, median(o.runs.map((r) => r[k] || 0))]).filter(([, v]) => v >= 0.5).sort((a, b) => b[1] - a[1]);
  const total = median(o.runs.map((r) => Object.values(r).reduce((s, v) => s + v, 0)));
  console.log(`${u}\n  ready: median ${median(o.ready).toFixed(0)} ms; main-thread CPU before it: median ${total.toFixed(1)} ms`);
  for (const [k, v] of rows) console.log(`    ${v.toFixed(1).padStart(6)} ms  ${k}`);
  const t = o.net;
  console.log(`  last run: parsed ${t.parsed.toFixed(0)} ms, DOMContentLoaded ${t.loaded.toFixed(0)} ms, first contentful paint ${t.fcp ? t.fcp.toFixed(0) : '-'} ms, ready ${t.ready.toFixed(0)} ms`);
  for (const r of t.net) console.log(`    ${r.start.toFixed(0).padStart(5)} ${r.req.toFixed(0).padStart(5)} ${r.end.toFixed(0).padStart(5)} ms  ${String(r.size).padStart(6)} B  ${r.name}`);
}
