// Where the time of a first visit goes, in a new context and from another site's tab
// (report only; not a test):
//
//   node tests/console/arrive.mjs N [URL...]
//
// For each URL given and the floor pages (report.mjs: a one-line page without and with
// Cross-Origin-Opener-Policy), N times in turn: a first visit in a new context ("cold"), and
// one in a new context whose tab showed a page of another site first ("other"). Prints the
// medians of: lag, the navigation's time origin less the moment page.goto was called (where
// the measured time starts); the navigation timing's requestStart, responseStart,
// responseEnd and domInteractive, and the mark autoglm:ready, all from the time origin; and
// total, the wall time from page.goto to the mark seen by the test.
import { launch, median, ready, floor } from './report.mjs';
const n = Number(process.argv[2] || 7);
const f = await floor();
const extra = process.argv.slice(3);
const urls = [...extra, ...f.urls];
const browser = await launch();
const another = (u) => { const a = new URL('/readyz', u); a.hostname = 'localhost'; return a.href; };
const out = new Map(urls.map((u) => [u, { other: [], cold: [] }]));
{ const c = await browser.newContext(); const p = await c.newPage(); await p.goto(urls[0]); await ready(p); await c.close(); }
for (let i = 0; i < n; i++) for (const u of urls) for (const kind of ['cold', 'other']) {
  const c = await browser.newContext(); const p = await c.newPage();
  if (kind === 'other') await p.goto(another(u));
  const t0 = Date.now();
  await p.goto(u); await ready(p);
  const t1 = Date.now();
  const r = await p.evaluate(() => { const e = performance.getEntriesByType('navigation')[0];
    return { origin: performance.timeOrigin, reqStart: e.requestStart, respStart: e.responseStart, respEnd: e.responseEnd, inter: e.domInteractive,
      mark: performance.getEntriesByName('autoglm:ready')[0].startTime }; });
  r.lag = r.origin - t0; r.total = t1 - t0;
  out.get(u)[kind].push(r);
  await c.close();
}
await browser.close(); await f.close();
const keys = ['lag', 'reqStart', 'respStart', 'respEnd', 'inter', 'mark', 'total'];
for (const [u, o] of out) for (const kind of ['cold', 'other']) {
  console.log(u, kind.padEnd(5), keys.map((k) => `${k} ${median(o[kind].map((r) => r[k])).toFixed(0)}`).join('  '));
}
