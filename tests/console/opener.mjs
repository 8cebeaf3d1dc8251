// What a page of another site that opened a window keeps of it, once that window shows the
// console, in headless Chromium (the system's; CHROMIUM names it) driven by playwright-core
// (an experiment, not a test: it prints what the browser does):
//
//   node tests/console/opener.mjs
//
// It decides whether the console may leave out Cross-Origin-Opener-Policy for navigations the
// user started (Sec-Fetch-Site: none) or that came from its own origin (same-origin). One
// loopback server plays both sites: http://localhost:PORT is the other site (its page opens
// windows), http://127.0.0.1:PORT/console is a stand-in for the console (a page that records
// the messages it receives), served with `Cross-Origin-Opener-Policy: same-origin` always
// ("always", as the console did), under the rule looked at ("rule": the header unless the
// request's Sec-Fetch-Site is none; "rule-so": none or same-origin), the same with every
// other page of the origin carrying the header when a browser navigates to it ("rule-all":
// what the server does), or never ("never", for reference).
//
// The ways of arriving tried, for each policy:
//   opened    the other site's page calls window.open(console)
//   typed     the other site's page opens a window of its own site (window.open), and the
//             user navigates that window to the console (page.goto: browser-initiated)
//   via-own   the other site's page opens a page of the console's origin that sends no COOP
//             (/plain), whose navigation then goes to the console (same-origin)
//   typed-own the other site's page opens a page of the console's origin that sends no COOP
//             (/plain), and the user navigates that window to the console (browser-initiated,
//             same origin: Sec-Fetch-Site none)
// and what the opener can still do with its handle: whether it sees the window open
// (w.closed), counts its frames (w.length), reaches it with postMessage, and navigates it
// away (w.location), finds it again by its name (window.open("", name)); and whether the
// console sees an opener (window.opener).
import http from 'node:http';
import { launch } from './report.mjs';

const seen = [];
const page = (body) => `<!doctype html><html lang="en"><meta charset="utf-8"><title>t</title>${body}</html>`;
const srv = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const h = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' };
  if (u.pathname === '/console') {
    const site = req.headers['sec-fetch-site'];
    const mode = u.searchParams.get('coop');
    const coop = mode === 'always' || (mode === 'rule-so' ? !(site === 'none' || site === 'same-origin') : mode.startsWith('rule') && site !== 'none');
    seen.push({ mode, site, coop });
    if (coop) h['Cross-Origin-Opener-Policy'] = 'same-origin';
    h.Vary = 'Sec-Fetch-Site';
    res.writeHead(200, h);
    res.end(page('<p>console</p><iframe></iframe><script>window.got = []; addEventListener("message", (e) => got.push(String(e.data)));</script>'));
    return;
  }
  // Under rule-all, every other page of the origin a browser navigates to carries the header, as
  // the server's pages do.
  if (u.searchParams.get('coop') === 'rule-all' && req.headers['sec-fetch-dest'] === 'document') h['Cross-Origin-Opener-Policy'] = 'same-origin';
  res.writeHead(200, h);
  res.end(page(`<p>${u.pathname}</p>`));
});
await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
const port = srv.address().port;
const other = `http://localhost:${port}`;
const own = `http://127.0.0.1:${port}`;

const browser = await launch();
const settle = (p) => p.waitForTimeout(500);

// attempt runs one way of arriving under one policy and returns what the opener could do.
async function attempt(way, mode) {
  const c = await browser.newContext();
  const opener = await c.newPage();
  await opener.goto(`${other}/opener`);
  const target = { opened: `${own}/console?coop=${mode}`, typed: `${other}/popup`, 'via-own': `${own}/plain?coop=${mode}`, 'typed-own': `${own}/plain?coop=${mode}` }[way];
  const [popup] = await Promise.all([c.waitForEvent('page'), opener.evaluate((t) => { window.w = window.open(t, 'p'); }, target)]);
  await popup.waitForLoadState();
  const from = seen.length;
  if (way === 'typed' || way === 'typed-own') await popup.goto(`${own}/console?coop=${mode}`);
  if (way === 'via-own') {
    await Promise.all([popup.waitForURL(/\/console/), popup.evaluate((m) => { location.href = `/console?coop=${m}`; }, mode)]);
  }
  await popup.waitForFunction(() => Array.isArray(window.got));
  await settle(popup);
  const site = (seen[from] || seen[seen.length - 1]).site;
  const coop = (seen[from] || seen[seen.length - 1]).coop;
  const r = { way, mode, 'sec-fetch-site': site, coop };
  r['console sees an opener'] = await popup.evaluate(() => window.opener !== null);
  const view = await opener.evaluate(() => {
    const o = {};
    try { o.closed = window.w.closed; } catch (e) { o.closed = `throws ${e.name}`; }
    try { o.length = window.w.length; } catch (e) { o.length = `throws ${e.name}`; }
    try { window.w.postMessage('from-opener', '*'); o.posted = true; } catch (e) { o.posted = `throws ${e.name}`; }
    return o;
  });
  await settle(popup);
  r['w.closed'] = view.closed;
  r['w.length'] = view.length;
  r['postMessage arrives'] = (await popup.evaluate(() => (window.got || []).includes('from-opener')));
  await opener.evaluate((a) => { try { window.w.location = a; } catch { /* recorded by the URL check */ } }, `${other}/away`);
  await settle(popup);
  r['navigated away by opener'] = popup.url().startsWith(`${other}/away`);
  // The window was opened with the name p: can the opener find it again by that name?
  const before = c.pages().length;
  const found = await opener.evaluate(() => {
    const x = window.open('', 'p');
    return x === window.w && !x.closed;
  });
  await settle(opener);
  r['found again by name'] = found && c.pages().length === before;
  await c.close();
  return r;
}

const rows = [];
for (const way of ['opened', 'typed', 'via-own', 'typed-own']) {
  for (const mode of ['always', 'rule-so', 'rule', 'rule-all', 'never']) rows.push(await attempt(way, mode));
}

// What the browser sends for a visit typed into a fresh tab and for a reload of it.
const c = await browser.newContext();
const p = await c.newPage();
let from = seen.length;
await p.goto(`${own}/console?coop=never`);
const typedSite = seen[from].site;
from = seen.length;
await p.reload();
const reloadSite = seen[from].site;
await c.close();

await browser.close();
await new Promise((resolve) => { srv.close(resolve); srv.closeAllConnections(); });
console.table(rows);
console.log(`Sec-Fetch-Site of a visit typed into a fresh tab: ${typedSite}; of its reload: ${reloadSite}`);
