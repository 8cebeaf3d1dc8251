// Load time of one or more consoles, compared in the same run (report only; not a test):
//
//   node tests/console/load.mjs N URL [URL...]
//
// For each URL, N times in turn (the URLs interleaved, so that a busy machine weighs on all
// alike): a first visit in a new browser context (empty cache, a new renderer process); a
// first visit in a new context whose tab showed a page of another site before (the same
// server's /readyz under the other of the names localhost and 127.0.0.1: what a user who
// comes from another site's tab meets); a first visit in a new context that opened the
// server's /readyz before (empty cache, the renderer for the site running); a reload (cache
// warm); and two visits in a browser that has been running a while, as a user's has: a
// context whose tab has shown a page of another site and then sat idle for a second (time
// for Chromium to start the spare renderer process it keeps for the next navigation), in
// which a new tab opens the URL ("new tab, browser running"), or that tab itself navigates
// to it ("from another site's tab, browser running"); the cache is empty for the URL's site
// in both.
//
// Each reports the time from the start of navigation (the navigation's performance timeline
// origin) to the first usable screen: the performance mark autoglm:ready, set in the
// requestAnimationFrame callback of the frame that first draws the sign-in form with its
// button enabled and its submit handled. For the first kind it also reports the CPU time of
// the renderer's main thread up to that mark, from a Chrome trace (thread time: less swayed
// by other work on the machine than the wall clock), and, for a page that loads its
// application after the first screen (<meta name="autoglm-app">), when the application took
// the page over (the mark autoglm:app). Medians are printed. CHROMIUM names the browser
// (default /usr/bin/chromium).
import { args, launch, median, ready, warmUp } from './report.mjs';

const { n, urls, stopFloor } = await args('load.mjs');
const browser = await launch();
const mark = (p) => p.evaluate(() => performance.getEntriesByName('autoglm:ready')[0].startTime);

// cpu returns the renderer main thread's CPU time (ms) up to the mark, from a trace.
function cpu(trace) {
  const ev = JSON.parse(trace.toString()).traceEvents;
  const m = ev.find((e) => e.name === 'autoglm:ready');
  const main = ev.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === m.pid && e.args.name === 'CrRendererMain').tid;
  return ev.filter((e) => e.pid === m.pid && e.tid === main && e.ph === 'X' && e.name === 'ThreadControllerImpl::RunTask' && e.ts <= m.ts)
    .reduce((sum, e) => sum + (e.tdur || 0), 0) / 1000;
}

// app waits for the mark autoglm:app (the application module has taken the page over, after
// the first screen) and returns its time, or nothing for a page that names no such module.
const app = async (p) => {
  await p.waitForFunction(() => performance.getEntriesByName('autoglm:app').length > 0 || !document.querySelector('meta[name="autoglm-app"]'));
  return p.evaluate(() => (performance.getEntriesByName('autoglm:app')[0] || {}).startTime);
};

// another returns an address of another site on the same server (localhost and 127.0.0.1 are
// different sites to a browser), for the visits that come from another site's page.
const another = (u) => {
  const a = new URL('/readyz', u);
  a.hostname = a.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  return a.href;
};

// running returns a context whose tab shows a page of another site and has been idle for a
// second since, and that tab.
const idle = () => new Promise((resolve) => setTimeout(resolve, 1000));
const running = async (u) => {
  const c = await browser.newContext();
  const p = await c.newPage();
  await p.goto(another(u));
  await idle();
  return { c, p };
};

const out = new Map(urls.map((u) => [u, { cold: [], cpu: [], app: [], other: [], up: [], warm: [], tab: [], nav: [] }]));
await warmUp(browser, urls[0]);
for (let i = 0; i < n; i++) {
  for (const u of urls) {
    const o = out.get(u);
    let c = await browser.newContext();
    let p = await c.newPage();
    await browser.startTracing(undefined, { categories: ['toplevel', 'blink.user_timing', '__metadata'] });
    await p.goto(u);
    await ready(p);
    o.cold.push(await mark(p));
    o.cpu.push(cpu(await browser.stopTracing()));
    const a = await app(p);
    if (a !== undefined) o.app.push(a);
    await p.reload();
    await ready(p);
    o.warm.push(await mark(p));
    await c.close();
    c = await browser.newContext();
    p = await c.newPage();
    await p.goto(new URL('/readyz', u).href);
    await p.goto(u);
    await ready(p);
    o.up.push(await mark(p));
    await c.close();
    c = await browser.newContext();
    p = await c.newPage();
    await p.goto(another(u));
    await p.goto(u);
    await ready(p);
    o.other.push(await mark(p));
    await c.close();
    ({ c } = await running(u));
    p = await c.newPage();
    await p.goto(u);
    await ready(p);
    o.tab.push(await mark(p));
    await c.close();
    ({ c, p } = await running(u));
    await p.goto(u);
    await ready(p);
    o.nav.push(await mark(p));
    await c.close();
  }
}
await browser.close();
await stopFloor();
const fmt = (xs) => `${median(xs).toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(', ')})`;
for (const [u, o] of out) {
  console.log(`${u}\n  first visit, new context:          ${fmt(o.cold)}\n  renderer main-thread CPU to it:    ${fmt(o.cpu)}` +
    (o.app.length ? `\n  application in (same visits):      ${fmt(o.app)}` : '') +
    `\n  first visit from another site:     ${fmt(o.other)}` +
    `\n  first visit, renderer already up:  ${fmt(o.up)}\n  reload, cache warm:                ${fmt(o.warm)}` +
    `\n  new tab, browser running:          ${fmt(o.tab)}\n  from another site's tab, running:  ${fmt(o.nav)}`);
}
