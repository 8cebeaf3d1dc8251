// What the load reports (load.mjs, trace.mjs) share: their arguments, the browser, the
// performance mark of the first usable screen, medians, and a warm-up visit.
import pw from 'playwright-core';

// args reads `node SCRIPT N URL [URL...]`, or exits with the usage line.
export function args(script) {
  const n = Number(process.argv[2]);
  const urls = process.argv.slice(3);
  if (!(n > 0) || urls.length === 0) {
    console.error(`usage: node ${script} N URL [URL...]`);
    process.exit(2);
  }
  return { n, urls };
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
