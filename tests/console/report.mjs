// What the load reports (load.mjs, trace.mjs) share: their arguments, the browser, the
// performance mark of the first usable screen, medians, a warm-up visit, and the floor pages
// measured beside the consoles.
import http from 'node:http';
import pw from 'playwright-core';

// args reads `node SCRIPT N URL [URL...]`, or exits with the usage line. Unless FLOOR=0, the
// floor pages (see floor) are measured after the URLs given; the returned stopFloor stops their
// server.
export async function args(script) {
  const n = Number(process.argv[2]);
  const urls = process.argv.slice(3);
  if (!(n > 0) || urls.length === 0) {
    console.error(`usage: node ${script} N URL [URL...]`);
    process.exit(2);
  }
  if (process.env.FLOOR === '0') return { n, urls, stopFloor: async () => {} };
  const f = await floor();
  return { n, urls: [...urls, ...f.urls], stopFloor: f.close };
}

// floorPage is the least a page can be: one line of text and one inline script that sets the
// mark in the next frame, as the console's first screen does.
const floorPage = '<!doctype html><html lang="en"><meta charset="utf-8"><title>floor</title><p>One line of text.</p>' +
  '<script>requestAnimationFrame(() => performance.mark("autoglm:ready"))</script></html>';

// floor serves the floor page on a loopback port of its own, at /none/ without and at /so/
// with the header Cross-Origin-Opener-Policy: same-origin (which the console sends), and
// /readyz (the page the visits "from another site" and "renderer already up" open first):
// what any page pays in the same browser at the same moment, against which a console's
// figures are read.
export async function floor() {
  const srv = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://floor');
    const h = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' };
    if (pathname === '/so/') h['Cross-Origin-Opener-Policy'] = 'same-origin';
    if (pathname === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    } else if (pathname === '/none/' || pathname === '/so/') {
      res.writeHead(200, h);
      res.end(floorPage);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${srv.address().port}`;
  return { urls: [`${base}/none/`, `${base}/so/`], close: () => new Promise((resolve) => { srv.close(resolve); srv.closeAllConnections(); }) };
}

// launch starts the headless Chromium named by CHROMIUM (default /usr/bin/chromium).
export const launch = () => pw.chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ready waits for the mark autoglm:ready (the first usable screen).
export const ready = (p) => p.waitForFunction(() => performance.getEntriesByName('autoglm:ready').length > 0);

// warmUp visits url once in a context of its own, so that the browser's own start is paid
// by none of the measured visits.
export async function warmUp(browser, url) {
  const c = await browser.newContext();
  const p = await c.newPage();
  await p.goto(url);
  await ready(p);
  await c.close();
}
