// The console's shell: sign-in, navigation by the address's fragment (#/keys), the theme,
// and the pages. What a page shows depends on the caller's permissions from GET /v1/me; the
// server enforces the same permissions on every request.
import './style.css';
import { render } from 'preact';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { get, getToken, setToken, ApiError, UNAUTHORIZED } from './api.js';
import { ErrorBox, Loading } from './ui.jsx';

// pages lists every page; can(me) says whether the caller may open it. adminAPI pages need
// the admin API, which the server only serves with authentication on. Each page is a file of
// its own, fetched the first time it is opened (load), so that the first screen waits for
// none of the others, nor for what only they use (charts, the code highlighter).
const pages = [
  { id: 'overview', label: 'Overview', load: () => import('./pages/overview.jsx').then((m) => m.Overview), can: () => true },
  { id: 'models', label: 'Models', load: () => import('./pages/models.jsx').then((m) => m.Models), can: (p) => p.has('models.list') || p.has('admin.backends') },
  { id: 'keys', label: 'Keys & users', load: () => import('./pages/keys.jsx').then((m) => m.Keys), adminAPI: true, can: (p) => p.has('admin.keys') || p.has('admin.users') || p.has('self.keys') },
  { id: 'usage', label: 'Usage', load: () => import('./pages/usage.jsx').then((m) => m.Usage), adminAPI: true, can: (p) => p.has('admin.usage') || p.has('self.usage') },
  { id: 'audit', label: 'Audit log', load: () => import('./pages/audit.jsx').then((m) => m.Audit), adminAPI: true, can: (p) => p.has('admin.audit') },
  { id: 'tasks', label: 'Tasks', load: () => import('./pages/tasks.jsx').then((m) => m.Tasks), can: (p) => p.has('models.use') },
  { id: 'playground', label: 'Playground', load: () => import('./pages/playground.jsx').then((m) => m.Playground), can: (p) => p.has('models.use') },
];

// views holds the pages' components once loaded, by page id; loading the code of a page the
// caller may not open is harmless (the server refuses its requests).
const views = new Map();
const loading = new Map();

// loadView fetches a page's code once and resolves when views has it. A failed fetch is
// tried again the next time the page is opened.
function loadView(page) {
  if (!page || views.has(page.id)) return Promise.resolve();
  if (!loading.has(page.id)) {
    loading.set(page.id, page.load().then(
      (view) => { views.set(page.id, view); loading.delete(page.id); },
      (err) => { loading.delete(page.id); throw err; },
    ));
  }
  return loading.get(page.id);
}

const pageOf = (id) => pages.find((p) => p.id === id);

function allowed(page, me) {
  if (page.adminAPI && !me.auth) return false;
  return page.can(me.perms);
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [id, ...rest] = h.split('/');
  return { id: id || 'overview', arg: rest.map(decodeURIComponent).join('/') };
}

// Theme: boot.js chose it before the page was drawn (the saved choice, else the system's);
// switching saves the choice for this browser.
function useTheme() {
  const [theme, setTheme] = useState(() => (document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light'));
  const toggle = () => setTheme((t) => {
    const next = t === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem('autoglm.theme', next); } catch { /* no storage */ }
    return next;
  });
  return [theme, toggle];
}

async function loadMe() {
  const me = await get('/v1/me');
  me.perms = new Set(me.permissions || []);
  return me;
}

const signedOut = () => ({ auth: true, authenticated: false, perms: new Set() });

// SignIn is also in index.html as static markup (with its button disabled until first.js,
// inline after it, has run), so that a first visit draws a usable form before this module
// has arrived; rendering this
// component over it keeps its elements, and what was typed into them. The field is read from
// the form, not kept in state, for that reason.
function SignIn({ onSignedIn, error: initial }) {
  const [error, setError] = useState(initial || null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const t = e.currentTarget.elements.token.value.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    setToken(t);
    try {
      // The page to show next is fetched while the server checks the credential.
      const [me] = await Promise.all([loadMe(), loadView(pageOf(parseHash().id)).catch(() => {})]);
      if (!me.authenticated) throw new ApiError(401, 'not_signed_in', 'the server did not accept this credential');
      onSignedIn(me);
    } catch (err) {
      setToken('');
      setError(err);
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="card" onSubmit={submit} autocomplete="off">
        <h1><span class="logo" aria-hidden="true">◆</span> autoglm</h1>
        <p class="muted">Sign in with an API key or a JWT. It is kept in this tab only and sent as a bearer token.</p>
        <label class="field">
          <span class="field-label">API key or token</span>
          <input type="password" name="token" placeholder="agk-… or eyJ…" autofocus spellcheck={false} />
        </label>
        <ErrorBox error={error} />
        <button class="btn primary" type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}

function Shell({ me, onSignOut, theme, toggleTheme }) {
  const [route, setRoute] = useState(parseHash);
  const [menu, setMenu] = useState(false);
  const [, setLoaded] = useState(0);
  const [loadError, setLoadError] = useState(null);
  useEffect(() => {
    const on = () => { setRoute(parseHash()); setMenu(false); };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const page = pageOf(route.id);
  const open = page && allowed(page, me);
  const View = open && views.get(page.id);
  useEffect(() => {
    if (!open || View) return;
    let live = true;
    setLoadError(null);
    loadView(page).then(() => live && setLoaded((n) => n + 1), (err) => live && setLoadError(err));
    return () => { live = false; };
  }, [page, open, View]);
  const visible = pages.filter((p) => allowed(p, me));
  const who = !me.auth ? 'authentication off' : me.method === 'admin_key' ? 'bootstrap admin' : me.key_prefix ? me.key_prefix + '…' : me.user_id;
  return (
    <div class={'shell' + (menu ? ' menu-open' : '')}>
      <header class="topbar">
        <button class="btn icon menu-btn" aria-label="Menu" aria-expanded={menu} onClick={() => setMenu(!menu)}>☰</button>
        <a class="brand" href="#/overview"><span class="logo" aria-hidden="true">◆</span> autoglm</a>
        <div class="spacer" />
        <span class="who" data-role={me.role || ''}>
          <span class="mono">{who}</span>{me.role ? <span class="badge info">{me.role}</span> : null}
        </span>
        <button class="btn icon" aria-label={'Switch to ' + (theme === 'dark' ? 'light' : 'dark') + ' theme'} onClick={toggleTheme} data-theme-toggle>{theme === 'dark' ? '☀' : '☾'}</button>
        {me.auth ? <button class="btn" onClick={onSignOut}>Sign out</button> : null}
      </header>
      <nav class="sidebar" aria-label="Pages">
        {visible.map((p) => (
          <a key={p.id} href={'#/' + p.id} class={p.id === route.id ? 'active' : ''} aria-current={p.id === route.id ? 'page' : undefined}>{p.label}</a>
        ))}
      </nav>
      <main class="content" id="main">
        {!me.auth && <div class="notice info">Authentication is off: every route is open to anyone who can reach this address, and keys, users, usage records and the audit log are not served. Set <code>AUTOGLM_ADMIN_KEY</code> to turn it on.</div>}
        {!page ? <div class="notice error" role="alert">No such page.</div>
          : !open ? (
            <div class="notice error forbidden" role="alert">
              {page.adminAPI && !me.auth ? 'This page needs authentication on.' : `Your role (${me.role}) cannot open ${page.label}.`}
            </div>
          ) : View ? <View me={me} arg={route.arg} key={page.id} />
            : loadError ? <ErrorBox error={new Error(`The ${page.label} page could not be loaded (${loadError.message}): reload to try again.`)} />
              : <Loading what={page.label.toLowerCase()} />}
      </main>
    </div>
  );
}

function App({ initialMe, initialError }) {
  const [theme, toggleTheme] = useTheme();
  const [me, setMe] = useState(initialMe);
  const [error, setError] = useState(initialError || null);
  useLayoutEffect(() => {
    // Marks, in the frame that draws it, the application's first screen (autoglm:app) and,
    // unless first.js already marked the static sign-in form usable, the first usable
    // screen (autoglm:ready), for the load-time measurements.
    requestAnimationFrame(() => {
      if (performance.getEntriesByName('autoglm:ready').length === 0) performance.mark('autoglm:ready');
      performance.mark('autoglm:app');
    });
  }, []);
  useEffect(() => {
    const expired = () => {
      setToken('');
      setMe(signedOut());
      setError(new ApiError(401, 'signed_out', 'The server no longer accepts this credential (revoked or expired): sign in again.'));
    };
    addEventListener(UNAUTHORIZED, expired);
    return () => removeEventListener(UNAUTHORIZED, expired);
  }, []);
  const signOut = () => {
    setToken('');
    setMe(signedOut());
    setError(null);
    location.hash = '#/overview';
  };
  if (me.auth && !me.authenticated) {
    return <SignIn onSignedIn={(m) => { setMe(m); setError(null); }} error={error} />;
  }
  return <Shell me={me} onSignOut={signOut} theme={theme} toggleTheme={toggleTheme} />;
}

// The first screen. Without a stored token GET /v1/me would answer the anonymous caller, and
// the page carries that answer (data-me on #app, written by the server): the sign-in form
// needs no request. With a token, GET /v1/me and the code of the page in the address start at
// once, in parallel, and the shell is drawn when both are in.
function embeddedMe(root) {
  if (getToken()) return null;
  try {
    const me = JSON.parse(root.dataset.me);
    me.perms = new Set(me.permissions || []);
    return me;
  } catch {
    return null;
  }
}

function start() {
  const root = document.getElementById('app');
  const draw = (me, error) => {
    // The sign-in screen is drawn over the page's static form, keeping its elements; any
    // other first screen replaces it (Preact leaves a container's other children be).
    // boot.js hid that form in a tab that holds a token; from here the application draws
    // every screen.
    if (!me.auth || me.authenticated) root.replaceChildren();
    delete document.documentElement.dataset.session;
    render(<App initialMe={me} initialError={error} />, root);
    // first.js handled the static form until now; it hands over a submit it held.
    document.dispatchEvent(new Event('autoglm:app'));
  };
  const embedded = embeddedMe(root);
  if (embedded && embedded.auth) {
    draw(embedded);
    return;
  }
  const view = loadView(pageOf(parseHash().id)).catch(() => {}); // a failure shows on the page
  Promise.all([embedded || loadMe(), view]).then(([me]) => draw(me), (err) => {
    // A stored token the server no longer accepts (revoked, expired): sign in again.
    setToken('');
    draw(signedOut(), err);
  });
}

start();
