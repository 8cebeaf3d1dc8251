// The console in a real browser: sign in, keys (create, copy, revoke), users, a streamed chat,
// a code task followed to the end, usage (with the CSV export), the audit log, and a user who
// cannot open admin pages. Run by run.sh, which starts the servers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

const base = process.env.CONSOLE_URL;
const adminKey = process.env.CONSOLE_ADMIN_KEY;
const shots = process.env.SCREENSHOT_DIR || '';
assert.ok(base && adminKey, 'CONSOLE_URL and CONSOLE_ADMIN_KEY must be set (run tests/console/run.sh)');

let browser;
let context;
let page;
const problems = []; // console errors (CSP violations among them) and uncaught exceptions

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
});

after(async () => {
  if (browser) await browser.close();
});

async function api(key, method, path, body) {
  const res = await fetch(base + path, { method, headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function shot(name, p = page) {
  if (!shots) return;
  await p.waitForTimeout(150); // let charts and fonts settle
  await p.screenshot({ path: `${shots}/${name}.png`, fullPage: false });
}

async function go(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

async function signIn(key) {
  await page.fill('input[name=token]', key);
  await page.click('button[type=submit]');
  await page.waitForSelector('nav.sidebar a[href="#/overview"]');
}

let userSecret = '';

test('the page is served with a strict CSP (load time reported)', async () => {
  const res = await page.goto(base + '/');
  const h = res.headers();
  assert.match(h['content-security-policy'], /default-src 'self'/);
  assert.doesNotMatch(h['content-security-policy'], /unsafe-inline|unsafe-eval/);
  // The only inline code, the head script, the styles and the script after the sign-in form,
  // is allowed by the hash of its text (the policy has nothing else for inline code), and the
  // browser ran and applied it.
  const csp = h['content-security-policy'];
  const inline = await page.evaluate(async () => Promise.all([...document.querySelectorAll('script:not([src]), style')].map(async (e) => {
    const sum = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(e.textContent));
    return { tag: e.tagName.toLowerCase(), hash: btoa(String.fromCharCode(...new Uint8Array(sum))) };
  })));
  assert.deepEqual(inline.map((e) => e.tag), ['script', 'style', 'script']);
  const sources = (d) => csp.split(';').map((s) => s.trim().split(/\s+/)).find((s) => s[0] === d).slice(1);
  for (const tag of ['script', 'style']) {
    assert.deepEqual(sources(`${tag}-src`), ["'self'", ...inline.filter((e) => e.tag === tag).map((e) => `'sha256-${e.hash}'`)]);
  }
  assert.match(await page.evaluate(() => document.documentElement.dataset.theme), /^(light|dark)$/);
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).getPropertyValue('--bg').trim()), '');
  assert.equal(h['set-cookie'], undefined);
  await page.waitForSelector('.signin form');
  await page.waitForFunction(() => performance.getEntriesByName('autoglm:ready').length > 0);
  // The page itself carries the sign-in form, drawn before any script runs, its button
  // disabled until the script that handles it has run. It is the form the script draws:
  // nothing on it changes when the script takes over but the button, which now works.
  const forms = await page.evaluate(async () => {
    const shape = (n) => n.nodeType === Node.TEXT_NODE ? n.data : n.nodeType !== Node.ELEMENT_NODE ? '' :
      `<${n.localName}${[...n.attributes].filter((a) => a.name !== 'data-static' && a.name !== 'disabled').map((a) => ` ${a.name}=${a.value}`).sort().join('')}>` +
      [...n.childNodes].map(shape).join('') + `</${n.localName}>`;
    const page = new DOMParser().parseFromString(await (await fetch('/', { cache: 'no-store' })).text(), 'text/html');
    const staticForm = page.querySelector('#app > .signin[data-static]');
    return { page: staticForm && shape(staticForm), live: shape(document.querySelector('#app > .signin')),
      disabled: staticForm && staticForm.querySelector('button[type=submit]').disabled, enabled: !document.querySelector('.signin button[type=submit]').disabled };
  });
  assert.ok(forms.page, 'the page carries the sign-in form');
  assert.equal(forms.page.replace(/autofocus=\S*/, 'autofocus'), forms.live.replace(/autofocus=\S*/, 'autofocus'));
  assert.ok(forms.disabled && forms.enabled, 'the static button is disabled until the script runs, then enabled');
  // Load time on loopback, reported (not asserted: timing never decides a test): from the
  // start of navigation to the first usable screen (the sign-in form, once its script runs),
  // with where the time went. Three ways, medians of 3 each:
  // - empty cache: a new browser context each time (no cache, no connection, and a new
  //   renderer process started for the page, which a browser that already runs pays less);
  // - empty cache, renderer up: a new context that first opened another address of the same
  //   server (/readyz), so the process for the site is running, but nothing is cached;
  // - cached: reloads with the cache warm.
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const measure = (p) => p.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const end = (re) => Math.max(0, ...res.filter((r) => re.test(r.name)).map((r) => r.responseEnd));
    return { ready: performance.getEntriesByName('autoglm:ready')[0].startTime, html: nav.responseEnd, parsed: nav.domInteractive,
      js: end(/\.js$/), me: end(/\/v1\/me$/) };
  });
  const report = (label, runs) => console.log(`console load, ${label} (median of ${runs.length}): first screen at ${median(runs.map((r) => r.ready)).toFixed(0)} ms` +
    ` (page received ${median(runs.map((r) => r.html)).toFixed(0)} ms, parsed ${median(runs.map((r) => r.parsed)).toFixed(0)} ms,` +
    ` application module in ${median(runs.map((r) => r.js)).toFixed(0)} ms, ` +
    `/v1/me ${runs.every((r) => r.me === 0) ? 'not requested (the page carries the anonymous answer)' : median(runs.map((r) => r.me)).toFixed(0) + ' ms'});` +
    ` all: ${runs.map((r) => r.ready.toFixed(0)).join(', ')} ms`);
  const ready = (p) => p.waitForFunction(() => performance.getEntriesByName('autoglm:ready').length > 0);
  const cold = [];
  const up = [];
  for (let i = 0; i < 3; i++) {
    for (const first of [null, '/readyz']) {
      const c = await browser.newContext();
      const p = await c.newPage();
      if (first) await p.goto(base + first);
      await p.goto(base + '/ui/');
      await ready(p);
      (first ? up : cold).push(await measure(p));
      await c.close();
    }
  }
  report('empty cache', cold);
  report('empty cache, renderer up', up);
  const warm = [];
  for (let i = 0; i < 3; i++) {
    await page.reload();
    await ready(page);
    warm.push(await measure(page));
  }
  report('cached', warm);
  await shot('signin');
});

test('a sign-in sent before the application has arrived is held, then completed', async () => {
  // The form works from the page's own script; the application module comes after the first
  // frame. Here it is held back until the form has been sent: the button says it is signing
  // in, and the sign-in completes once the module is in.
  const c = await browser.newContext();
  const p = await c.newPage();
  let release;
  const gate = new Promise((r) => { release = r; });
  await p.route(/\/ui\/assets\/app-[^/]*\.js$/, async (route) => { await gate; await route.continue(); });
  await p.goto(base + '/ui/');
  await p.waitForFunction(() => performance.getEntriesByName('autoglm:ready').length > 0);
  await p.fill('input[name=token]', adminKey);
  await p.click('button[type=submit]');
  await p.waitForSelector('.signin button[type=submit][disabled]:text-is("Signing in…")');
  assert.equal(await p.locator('nav.sidebar').count(), 0);
  release();
  await p.waitForSelector('nav.sidebar a[href="#/overview"]');
  assert.equal(await p.evaluate(() => sessionStorage.getItem('autoglm.token')), adminKey);
  await c.close();
});

test('a page of another site that opens the console gets no usable handle on it', async () => {
  // The same server under the other name is another site to the browser (localhost against
  // 127.0.0.1). Two ways the console can come into a window that such a page opened:
  // window.open of the console (Sec-Fetch-Site cross-site: the page carries
  // Cross-Origin-Opener-Policy: same-origin), and a window of the other site's own that the
  // user then navigates to the console's address (page.goto: Sec-Fetch-Site none, the page
  // without the header; the browser puts such a navigation into a new browsing context group
  // by itself). In both, the console has no opener and the opener cannot message, navigate or
  // find the console's window.
  const other = new URL(base);
  other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  const elsewhere = new URL('/readyz', other).href;
  for (const way of ['window.open', 'typed into the opened window']) {
    const c = await browser.newContext();
    const opener = await c.newPage();
    await opener.goto(elsewhere);
    const first = way === 'window.open' ? base + '/ui/' : elsewhere + '?popup';
    const opened = c.waitForEvent('page');
    const answered = c.waitForEvent('response', (r) => r.url() === first);
    await opener.evaluate((u) => { window.w = window.open(u, 'console'); }, first);
    const popup = await opened;
    let coop = (await answered).headers()['cross-origin-opener-policy'];
    if (way !== 'window.open') coop = (await popup.goto(base + '/ui/')).headers()['cross-origin-opener-policy'];
    assert.equal(coop, way === 'window.open' ? 'same-origin' : undefined, way);
    await popup.waitForFunction(() => performance.getEntriesByName('autoglm:ready').length > 0);
    await popup.evaluate(() => { window.got = []; addEventListener('message', (e) => window.got.push(e.data)); });
    assert.equal(await popup.evaluate(() => window.opener), null, `${way}: the console sees no opener`);
    await opener.evaluate((away) => {
      try { window.w.postMessage('from-opener', '*'); } catch { /* a severed handle may throw */ }
      try { window.w.location = away; } catch { /* likewise */ }
    }, elsewhere + '?away');
    await popup.waitForTimeout(500);
    assert.deepEqual(await popup.evaluate(() => window.got), [], `${way}: a message from the opener arrived`);
    assert.equal(popup.url(), base + '/ui/', `${way}: the opener navigated the console away`);
    assert.equal(await opener.evaluate(() => window.w.length), 0, way);
    if (way === 'window.open') assert.equal(await opener.evaluate(() => window.w.closed), true, way);
    await c.close();
  }
  // A console reached by its address in a fresh tab comes without the header, and so stays in
  // the tab's browsing context group: no process is started for it after its answer (a
  // browsing context group switch would clear the name given to the tab's blank page); one
  // opened from another site does switch.
  for (const [from, switched] of [[null, false], [elsewhere, true]]) {
    const c = await browser.newContext();
    const p = await c.newPage();
    if (from) {
      await p.goto(from);
      // A link on that page (the browser would put a typed address in a new group anyway).
      await p.evaluate((u) => { window.name = 'kept'; location.href = u; }, base + '/ui/');
      await p.waitForURL(base + '/ui/');
    } else {
      await p.evaluate(() => { window.name = 'kept'; });
      await p.goto(base + '/ui/');
    }
    await p.waitForFunction(() => performance.getEntriesByName('autoglm:ready').length > 0);
    assert.equal(await p.evaluate(() => window.name), switched ? '' : 'kept', from ? 'a link from another site' : 'a typed address');
    await c.close();
  }
});

test('an admin signs in with the key; it stays out of the address', async () => {
  await page.goto(base + '/');
  await page.fill('input[name=token]', 'agk-not-a-real-key-000000000000000000000000000');
  await page.click('button[type=submit]');
  await page.waitForSelector('.signin .notice.error');
  await signIn(adminKey);
  assert.ok(!page.url().includes(adminKey));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('autoglm.token')), adminKey);
  assert.deepEqual(await context.cookies(), []);
  for (const label of ['Overview', 'Models', 'Keys & users', 'Usage', 'Audit log', 'Tasks', 'Playground']) {
    await page.waitForSelector(`nav.sidebar a:text-is("${label}")`);
  }
  await page.reload();
  await page.waitForSelector('nav.sidebar a[href="#/overview"]'); // the tab keeps the session
  assert.equal(await page.locator('.signin').count(), 0, 'the page\'s static sign-in form is gone under the shell');
});

test('users and keys: create, copy the secret once, revoke', async () => {
  await go('#/keys');
  await page.click('button[role=tab]:text-is("Users")');
  await page.fill('input[name=user_name]', 'alice');
  await page.fill('input[name=email]', 'alice@example.com');
  await page.click('form[aria-label="Create a user"] button[type=submit]');
  await page.waitForSelector('td:text-is("alice")');
  await shot('users');

  await page.click('button[role=tab]:text-is("Keys")');
  await page.fill('input[name=name]', 'alice-laptop');
  await page.selectOption('select[name=user_id]', { label: 'alice · user' });
  await page.click('form[aria-label="Create a key"] button[type=submit]');
  const secret = (await page.textContent('[data-secret-value]')).trim();
  assert.match(secret, /^agk-/);
  await page.click('[data-secret] button[data-copy]');
  await page.waitForSelector('[data-secret] button[data-copy]:text-is("Copied")');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  userSecret = secret;
  await shot('keys-created');
  await page.click('[data-secret] button:text-is("Done")');
  await page.waitForSelector('td:text-is("alice-laptop")');
  assert.equal(await page.locator('[data-secret]').count(), 0, 'the secret is not shown again');

  // A second key, revoked from the list: it stops working.
  await page.fill('input[name=name]', 'to-revoke');
  await page.click('form[aria-label="Create a key"] button[type=submit]');
  const doomed = (await page.textContent('[data-secret-value]')).trim();
  assert.equal((await api(doomed, 'GET', '/v1/models')).status, 200);
  await page.click('[data-secret] button:text-is("Done")');
  const row = page.locator('tr', { has: page.locator('td:text-is("to-revoke")') });
  await row.locator('button:text-is("Revoke")').click();
  await row.locator('button:text-is("Confirm revoke")').click();
  await page.waitForSelector('td:text-is("to-revoke")', { state: 'detached' });
  assert.equal((await api(doomed, 'GET', '/v1/models')).status, 401);
  await page.check('text=show revoked');
  await page.locator('tr', { has: page.locator('td:text-is("to-revoke")') }).locator('.badge:text-is("revoked")').waitFor();
  await page.uncheck('text=show revoked');
  await shot('keys');
  await page.click('button[role=tab]:text-is("Roles")');
  await page.waitForSelector('td .badge:text-is("admin")');
  await shot('roles');
});

test('the playground streams a chat and shows TTFT, speed and the trace id', async () => {
  await go('#/playground');
  await page.selectOption('select[name=model]', 'glm-4-flash');
  await page.fill('textarea[name=prompt]', 'Say something.');
  await page.click('.composer button[type=submit]');
  // The answer arrives in pieces: some text is on screen before the stream has ended.
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-streaming]');
    return el && el.textContent.replace('▍', '').trim().length > 0;
  });
  await page.waitForSelector('[data-stats]');
  const reply = await page.textContent('.msg.assistant .msg-text');
  assert.ok(reply.trim().split(/\s+/).length >= 5, `a reply of several words, got ${JSON.stringify(reply)}`);
  assert.match(await page.textContent('[data-trace]'), /^[0-9a-f]{16,}$/);
  assert.match(await page.textContent('[data-ttft]'), /\d/);
  await shot('playground');
});

test('a code task is submitted and followed to the end', async () => {
  await go('#/playground');
  await page.click('button[role=tab]:text-is("Code task")');
  await page.selectOption('select[name=task_model]', 'glm-4-flash');
  await page.fill('textarea[name=task_prompt]', 'A function that adds two numbers.');
  await page.click('form[aria-label="Submit a code task"] button[type=submit]');
  await page.waitForURL(/#\/tasks\/.+/);
  await page.waitForSelector('[data-task-status="succeeded"]', { timeout: 30000 });
  await page.waitForFunction(() => (document.querySelector('[data-task-output]') || {}).textContent?.trim().length > 0);
  await page.waitForSelector('td .badge:text-is("status")');
  await shot('task');
  await go('#/tasks');
  await page.waitForSelector('td .badge:text-is("succeeded")');
  await shot('tasks');
});

test('a running task is canceled from its page', async () => {
  await go('#/playground');
  await page.click('button[role=tab]:text-is("Code task")');
  await page.selectOption('select[name=task_model]', 'glm-slow');
  await page.fill('textarea[name=task_prompt]', 'Anything; this model is slow.');
  await page.click('form[aria-label="Submit a code task"] button[type=submit]');
  await page.waitForURL(/#\/tasks\/.+/);
  const id = decodeURIComponent(page.url().split('#/tasks/')[1]);
  await page.waitForSelector('[data-task-status="running"]');
  await page.click('button.danger:text-is("Cancel")');
  await page.waitForSelector('[data-task-status="canceled"]');
  assert.equal((await api(adminKey, 'GET', '/v1/task/' + id)).body.data.status, 'canceled');
});

test('usage shows the requests, with a CSV export', async () => {
  await go('#/usage');
  // Usage records are written in batches: look again until the chat's record is there.
  for (let i = 0; ; i++) {
    await page.click('form[aria-label="Filter usage"] button[type=submit]');
    try {
      await page.waitForSelector('td .mono:text-is("glm-4-flash")', { timeout: 1000 });
      break;
    } catch (err) {
      if (i > 20) throw err;
    }
  }
  await page.waitForSelector('.stat-value');
  const dl = page.waitForEvent('download');
  await page.click('button[data-export]');
  const csv = await readFile(await (await dl).path(), 'utf8');
  const lines = csv.trim().split(/\r\n/);
  assert.equal(lines[0], 'time,model,backend,key_id,user_id,prompt_tokens,completion_tokens,latency_ms,status,trace_id');
  assert.ok(lines.some((l) => l.includes(',glm-4-flash,')), csv);
  await shot('usage');
  await go('#/overview');
  await page.waitForSelector('figure.chart svg');
  await shot('overview');
  await go('#/models');
  await page.waitForSelector('.card-head .mono:text-is("glm-4-flash")');
  await page.waitForSelector('td .badge:text-is("closed")');
  // The local engine's model, with its architecture and mapped size.
  const engine = page.locator('.card', { has: page.locator('h2:text-is("Local engine")') });
  await engine.locator('td .mono:text-is("stories260k")').waitFor();
  assert.match(await engine.textContent(), /llama.*MiB/s);
  await shot('models');
});

test('the audit log lists the admin operations', async () => {
  await go('#/audit');
  await page.fill('input[name=action]', 'key.create');
  await page.click('form[aria-label="Filter the audit log"] button[type=submit]');
  // The unfiltered list may still be on screen when the click returns (it was loaded first and
  // stays until the filtered answer replaces it), so wait for the filtered list itself: key.create
  // rows and no key.revoke row. A filter that does not apply times this out.
  await page.waitForFunction(() => {
    const actions = [...document.querySelectorAll('td .mono')].map((e) => e.textContent);
    return actions.includes('key.create') && !actions.includes('key.revoke');
  }, null, { timeout: 10000 });
  await page.click('form[aria-label="Filter the audit log"] button:text-is("Clear")');
  await page.waitForSelector('td .mono:text-is("key.revoke")');
  await shot('audit');
});

test('dark theme and a phone-sized screen', async () => {
  await go('#/overview');
  await page.click('[data-theme-toggle]');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).colorScheme), 'dark');
  await page.waitForSelector('figure.chart svg');
  await shot('overview-dark');
  await page.click('[data-theme-toggle]');
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  await p.goto(base + '/');
  await p.fill('input[name=token]', adminKey);
  await p.click('button[type=submit]');
  await p.waitForSelector('.menu-btn');
  assert.equal(await p.isVisible('nav.sidebar'), false, 'the menu is folded on a phone');
  await p.click('.menu-btn');
  await p.click('nav.sidebar a[href="#/playground"]');
  await p.waitForSelector('select[name=model]');
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await shot('phone-playground', p);
  await phone.close();
});

test('signing out forgets the key; a user cannot open admin pages', async () => {
  await page.click('button:text-is("Sign out")');
  await page.waitForSelector('.signin form');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('autoglm.token')), null);
  await signIn(userSecret);
  await page.waitForSelector('.who .badge:text-is("user")');
  for (const label of ['Audit log']) {
    assert.equal(await page.locator(`nav.sidebar a:text-is("${label}")`).count(), 0, `${label} is hidden from a user`);
  }
  await go('#/audit');
  await page.waitForSelector('.forbidden');
  assert.match(await page.textContent('.forbidden'), /Your role \(user\) cannot open Audit log/);
  // The server refuses too, whatever the page shows.
  assert.equal((await api(userSecret, 'GET', '/v1/admin/audit')).status, 403);
  assert.equal((await api(userSecret, 'GET', '/v1/admin/keys')).status, 403);
  await go('#/keys');
  await page.waitForSelector('h2:text-is("Your keys")');
  await page.waitForSelector('td:text-is("alice-laptop")');
  assert.equal(await page.locator('form[aria-label="Create a key"]').count(), 0);
  await go('#/overview');
  await page.waitForSelector('text=Your requests');
  await shot('user-keys');
  // Revoked while signed in: the next request is refused and the console signs out.
  const me = (await api(userSecret, 'GET', '/v1/me')).body.data;
  assert.equal((await api(adminKey, 'DELETE', '/v1/admin/keys/' + me.key_id)).status, 200);
  await go('#/keys');
  await page.waitForSelector('.signin .notice.error');
  assert.match(await page.textContent('.signin .notice.error'), /no longer accepts/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('autoglm.token')), null);
});

// jwt signs an HS256 token with the server's test secret.
function jwt(claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({ exp: Math.floor(Date.now() / 1000) + 600, ...claims });
  return body + '.' + createHmac('sha256', process.env.CONSOLE_JWT_SECRET).update(body).digest('base64url');
}

test('a JWT signs in too, and a guest sees only what a guest may do', async () => {
  await signIn(jwt({ sub: 'jwt-guest', role: 'guest' }));
  await page.waitForSelector('.who .badge:text-is("guest")');
  assert.match(await page.textContent('.who'), /jwt-guest/);
  await page.waitForSelector('nav.sidebar a:text-is("Models")');
  for (const label of ['Playground', 'Tasks', 'Usage', 'Audit log', 'Keys & users']) {
    assert.equal(await page.locator(`nav.sidebar a:text-is("${label}")`).count(), 0, `${label} is hidden from a guest`);
  }
  await go('#/models');
  await page.waitForSelector('td .mono:text-is("glm-4-flash")');
  await go('#/playground');
  await page.waitForSelector('.forbidden');
  await page.click('button:text-is("Sign out")');
  await page.waitForSelector('.signin form');
});

test('no console errors and no CSP violations', () => {
  assert.deepEqual(problems, []);
});
