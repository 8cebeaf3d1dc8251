// The console's shell: sign-in, navigation by the address's fragment (#/keys), the theme,
// and the pages. What a page shows depends on the caller's permissions from GET /v1/me; the
// server enforces the same permissions on every request.
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, getToken, setToken, ApiError, UNAUTHORIZED } from './api.js';
import { ErrorBox } from './ui.jsx';
import { Overview } from './pages/overview.jsx';
import { Models } from './pages/models.jsx';
import { Keys } from './pages/keys.jsx';
import { Usage } from './pages/usage.jsx';
import { Audit } from './pages/audit.jsx';
import { Tasks } from './pages/tasks.jsx';
import { Playground } from './pages/playground.jsx';

// pages lists every page; can(me) says whether the caller may open it. adminAPI pages need
// the admin API, which the server only serves with authentication on.
const pages = [
  { id: 'overview', label: 'Overview', view: Overview, can: () => true },
  { id: 'models', label: 'Models', view: Models, can: (p) => p.has('models.list') || p.has('admin.backends') },
  { id: 'keys', label: 'Keys & users', view: Keys, adminAPI: true, can: (p) => p.has('admin.keys') || p.has('admin.users') || p.has('self.keys') },
  { id: 'usage', label: 'Usage', view: Usage, adminAPI: true, can: (p) => p.has('admin.usage') || p.has('self.usage') },
  { id: 'audit', label: 'Audit log', view: Audit, adminAPI: true, can: (p) => p.has('admin.audit') },
  { id: 'tasks', label: 'Tasks', view: Tasks, can: (p) => p.has('models.use') },
  { id: 'playground', label: 'Playground', view: Playground, can: (p) => p.has('models.use') },
];

function allowed(page, me) {
  if (page.adminAPI && !me.auth) return false;
  return page.can(me.perms);
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [id, ...rest] = h.split('/');
  return { id: id || 'overview', arg: rest.map(decodeURIComponent).join('/') };
}

// Theme: the saved choice, else the system's; saved per browser.
function initialTheme() {
  try {
    const t = localStorage.getItem('autoglm.theme');
    if (t === 'light' || t === 'dark') return t;
  } catch { /* no storage */ }
  return window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function useTheme() {
  const [theme, setTheme] = useState(initialTheme);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    try { localStorage.setItem('autoglm.theme', theme); } catch { /* no storage */ }
  }, [theme]);
  return [theme, () => setTheme((t) => (t === 'dark' ? 'light' : 'dark'))];
}

async function loadMe() {
  const me = await get('/v1/me');
  me.perms = new Set(me.permissions || []);
  return me;
}

function SignIn({ onSignedIn, error: initial }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState(initial || null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return;
    setBusy(true);
    setError(null);
    setToken(t);
    try {
      const me = await loadMe();
      if (!me.authenticated) throw new ApiError(401, 'not_signed_in', 'the server did not accept this credential');
      onSignedIn(me);
    } catch (err) {
      setToken('');
      setError(err);
    } finally {
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
          <input type="password" name="token" value={token} onInput={(e) => setValue(e.currentTarget.value)} placeholder="agk-… or eyJ…" autofocus spellcheck={false} />
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
  useEffect(() => {
    const on = () => { setRoute(parseHash()); setMenu(false); };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const page = pages.find((p) => p.id === route.id);
  const visible = pages.filter((p) => allowed(p, me));
  const View = page && page.view;
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
          : !allowed(page, me) ? (
            <div class="notice error forbidden" role="alert">
              {page.adminAPI && !me.auth ? 'This page needs authentication on.' : `Your role (${me.role}) cannot open ${page.label}.`}
            </div>
          ) : <View me={me} arg={route.arg} key={page.id} />}
      </main>
    </div>
  );
}

// Without a stored token, GET /v1/me would answer the anonymous caller, and the page carries
// that answer (data-me on #app, written by the server): the first screen needs no request.
// With a token, the first GET /v1/me starts as soon as the script runs, before the first render.
function embeddedMe() {
  if (getToken()) return null;
  const raw = document.getElementById('app').dataset.me;
  if (!raw) return null;
  try {
    const me = JSON.parse(raw);
    me.perms = new Set(me.permissions || []);
    return me;
  } catch {
    return null;
  }
}
const embedded = embeddedMe();
const firstMe = embedded ? Promise.resolve(embedded) : loadMe();
firstMe.catch(() => {}); // handled in App; this only keeps an early failure from being reported as unhandled

function App() {
  const [theme, toggleTheme] = useTheme();
  const [me, setMe] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    // Marks the first screen drawn, for the load-time measurement of the browser test.
    if (me) requestAnimationFrame(() => performance.mark('autoglm:ready'));
  }, [me !== null]);
  useEffect(() => {
    firstMe.then(setMe, (err) => {
      // A stored token the server no longer accepts (revoked, expired): sign in again.
      setToken('');
      setError(err);
      setMe({ auth: true, authenticated: false, perms: new Set() });
    });
  }, []);
  useEffect(() => {
    const expired = () => {
      setToken('');
      setMe({ auth: true, authenticated: false, perms: new Set() });
      setError(new ApiError(401, 'signed_out', 'The server no longer accepts this credential (revoked or expired): sign in again.'));
    };
    addEventListener(UNAUTHORIZED, expired);
    return () => removeEventListener(UNAUTHORIZED, expired);
  }, []);
  if (!me) return <p class="muted boot">Loading…</p>;
  const signOut = () => {
    setToken('');
    setMe({ auth: true, authenticated: false, perms: new Set() });
    setError(null);
    location.hash = '#/overview';
  };
  if (me.auth && !me.authenticated) {
    return <SignIn onSignedIn={(m) => { setMe(m); setError(null); }} error={error} />;
  }
  return <Shell me={me} onSignOut={signOut} theme={theme} toggleTheme={toggleTheme} />;
}

render(<App />, document.getElementById('app'));
