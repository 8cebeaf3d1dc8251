// Keys, users and roles. Admins create keys (the secret is shown once, with a copy button),
// revoke them, set allow-lists and expiry, manage users and read the roles; a user sees their
// own keys.
import { useState } from 'preact/hooks';
import { call, get, query } from '../api.js';
import { Badge, Card, Copy, ErrorBox, Field, Loading, Pager, Status, Table, fmtTime, useLoad, usePager } from '../ui.jsx';

function keyState(k) {
  if (k.revoked_at) return 'revoked';
  if (k.user_disabled) return 'disabled';
  if (k.expires_at && new Date(k.expires_at) < new Date()) return 'expired';
  return 'active';
}

const expiries = [
  { id: '', label: 'Never' },
  { id: '24h', label: '1 day' },
  { id: '168h', label: '7 days' },
  { id: '720h', label: '30 days' },
  { id: '2160h', label: '90 days' },
];

function CreateKey({ me, users, onCreated }) {
  const roles = Object.keys(me.roles || {});
  const [f, setF] = useState({ user_id: '', name: '', role: '', models: '', expires_in: '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { name: f.name.trim() || undefined, user_id: f.user_id || undefined, role: f.role || undefined, expires_in: f.expires_in || undefined };
      const models = f.models.split(',').map((s) => s.trim()).filter(Boolean);
      if (models.length) body.models = models;
      const k = await call('POST', '/v1/admin/keys', body);
      onCreated(k);
      setF({ user_id: '', name: '', role: '', models: '', expires_in: '' });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form-grid" onSubmit={submit} aria-label="Create a key">
      <Field label="Name"><input name="name" value={f.name} onInput={set('name')} placeholder="ci-bot" /></Field>
      <Field label="User">
        {users ? (
          <select name="user_id" value={f.user_id} onChange={set('user_id')}>
            <option value="">(no user)</option>
            {users.map((u) => <option key={u.id} value={u.id} disabled={u.disabled}>{u.name} · {u.role}</option>)}
          </select>
        ) : <input name="user_id" value={f.user_id} onInput={set('user_id')} placeholder="usr_…" />}
      </Field>
      <Field label="Role" hint="empty: the user's role">
        <select name="role" value={f.role} onChange={set('role')}>
          <option value="">(default)</option>
          {roles.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
      </Field>
      <Field label="Models" hint="comma-separated; empty allows all"><input name="models" value={f.models} onInput={set('models')} placeholder="glm-4-flash, stories260k" /></Field>
      <Field label="Expires">
        <select name="expires_in" value={f.expires_in} onChange={set('expires_in')}>
          {expiries.map((x) => <option key={x.id} value={x.id}>{x.label}</option>)}
        </select>
      </Field>
      <div class="form-actions"><button class="btn primary" type="submit" disabled={busy}>Create key</button></div>
      <ErrorBox error={error} />
    </form>
  );
}

function NewSecret({ k, onDone }) {
  return (
    <div class="notice secret" role="status" data-secret>
      <p><strong>Key {k.name || k.id} created.</strong> Copy the secret now: it is not stored and will not be shown again.</p>
      <div class="secret-row">
        <code class="mono" data-secret-value>{k.secret}</code>
        <Copy text={k.secret} />
      </div>
      <button class="btn small" onClick={onDone}>Done</button>
    </div>
  );
}

function RevokeButton({ k, onRevoked }) {
  const [armed, setArmed] = useState(false);
  const [error, setError] = useState(null);
  if (k.revoked_at) return <span class="muted small">revoked {fmtTime(k.revoked_at)}</span>;
  const revoke = async () => {
    try {
      await call('DELETE', '/v1/admin/keys/' + encodeURIComponent(k.id));
      onRevoked();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <span>
      {armed ? <>
        <button class="btn small danger" onClick={revoke}>Confirm revoke</button>
        <button class="btn small" onClick={() => setArmed(false)}>Keep</button>
      </> : <button class="btn small" onClick={() => setArmed(true)}>Revoke</button>}
      <ErrorBox error={error} />
    </span>
  );
}

function keyColumns(admin, reload) {
  const cols = [
    { key: 'name', label: 'Name', render: (k) => k.name || <span class="muted">–</span> },
    { key: 'prefix', label: 'Key', render: (k) => <span class="mono">{k.prefix}…</span> },
    { key: 'id', label: 'ID', render: (k) => <span class="mono small">{k.id}</span> },
    { key: 'user_id', label: 'User', render: (k) => <span class="mono small">{k.user_id || '–'}</span> },
    { key: 'role', label: 'Role', render: (k) => <Badge>{k.role}</Badge> },
    { key: 'models', label: 'Models', render: (k) => (k.models && k.models.length ? <span class="mono small">{k.models.join(', ')}</span> : <span class="muted">all</span>) },
    { key: 'expires_at', label: 'Expires', render: (k) => (k.expires_at ? fmtTime(k.expires_at) : <span class="muted">never</span>) },
    { key: 'state', label: 'State', render: (k) => <Status value={keyState(k)} /> },
    { key: 'created_at', label: 'Created', render: (k) => fmtTime(k.created_at) },
  ];
  if (admin) cols.push({ key: 'actions', label: '', render: (k) => <RevokeButton k={k} onRevoked={reload} /> });
  return cols;
}

function AdminKeys({ me }) {
  const [revoked, setRevoked] = useState(false);
  const [created, setCreated] = useState(null);
  const pager = usePager();
  const keys = useLoad(() => get('/v1/admin/keys' + query({ include_revoked: revoked ? 'true' : '', cursor: pager.cursor, limit: 50 })), [revoked, pager.cursor]);
  const users = useLoad(() => (me.perms.has('admin.users') ? get('/v1/admin/users?limit=1000').then((p) => p.items || []) : Promise.resolve(null)), []);
  return (
    <>
      <Card title="Create a key">
        {created ? <NewSecret k={created} onDone={() => setCreated(null)} /> : <CreateKey me={me} users={users.data} onCreated={(k) => { setCreated(k); keys.reload(); }} />}
      </Card>
      <Card title="Keys" actions={<label class="check"><input type="checkbox" checked={revoked} onChange={(e) => { setRevoked(e.currentTarget.checked); pager.reset(); }} /> show revoked</label>}>
        {keys.error ? <ErrorBox error={keys.error} /> : !keys.data ? <Loading what="keys" /> : <>
          <Table columns={keyColumns(true, keys.reload)} rows={keys.data.items} rowKey={(k) => k.id} empty="No keys yet." />
          <Pager pager={pager} next={keys.data.next} />
        </>}
      </Card>
    </>
  );
}

function Users({ me }) {
  const roles = Object.keys(me.roles || {});
  const pager = usePager();
  const users = useLoad(() => get('/v1/admin/users' + query({ cursor: pager.cursor, limit: 50 })), [pager.cursor]);
  const [f, setF] = useState({ name: '', email: '', role: 'user' });
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await call('POST', '/v1/admin/users', { name: f.name.trim(), email: f.email.trim() || undefined, role: f.role });
      setF({ name: '', email: '', role: 'user' });
      users.reload();
    } catch (err) {
      setError(err);
    }
  };
  const toggle = async (u) => {
    setError(null);
    try {
      await call('PATCH', '/v1/admin/users/' + encodeURIComponent(u.id), { disabled: !u.disabled });
      users.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Card title="Users">
      <form class="form-grid" onSubmit={submit} aria-label="Create a user">
        <Field label="Name"><input name="user_name" value={f.name} onInput={(e) => setF({ ...f, name: e.currentTarget.value })} required /></Field>
        <Field label="Email"><input name="email" type="email" value={f.email} onInput={(e) => setF({ ...f, email: e.currentTarget.value })} /></Field>
        <Field label="Role">
          <select name="user_role" value={f.role} onChange={(e) => setF({ ...f, role: e.currentTarget.value })}>
            {roles.map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </Field>
        <div class="form-actions"><button class="btn primary" type="submit">Create user</button></div>
      </form>
      <ErrorBox error={error || users.error} />
      {users.data && <>
        <Table rowKey={(u) => u.id} rows={users.data.items} empty="No users yet." columns={[
          { key: 'name', label: 'Name' },
          { key: 'id', label: 'ID', render: (u) => <span class="mono small">{u.id}</span> },
          { key: 'email', label: 'Email', render: (u) => u.email || '–' },
          { key: 'role', label: 'Role', render: (u) => <Badge>{u.role}</Badge> },
          { key: 'state', label: 'State', render: (u) => <Status value={u.disabled ? 'disabled' : 'active'} /> },
          { key: 'created_at', label: 'Created', render: (u) => fmtTime(u.created_at) },
          { key: 'actions', label: '', render: (u) => <button class="btn small" onClick={() => toggle(u)}>{u.disabled ? 'Enable' : 'Disable'}</button> },
        ]} />
        <Pager pager={pager} next={users.data.next} />
      </>}
    </Card>
  );
}

function Roles({ me }) {
  const roles = Object.entries(me.roles || {});
  const perms = [...new Set(roles.flatMap(([, p]) => p))];
  return (
    <Card title="Roles">
      <p class="muted small">Built-in roles and those in the configuration's <code>auth.roles</code>. A key may only be given a role whose permissions its creator holds.</p>
      <Table rowKey={(r) => r[0]} rows={roles} columns={[
        { key: 'role', label: 'Role', render: (r) => <Badge>{r[0]}</Badge> },
        ...perms.map((p) => ({ key: p, label: p, render: (r) => (r[1].includes(p) ? <span class="yes" aria-label="yes">✓</span> : <span class="muted" aria-label="no">·</span>) })),
      ]} />
    </Card>
  );
}

function MyKeys() {
  const keys = useLoad(() => get('/v1/me/keys'), []);
  if (keys.error) return <ErrorBox error={keys.error} />;
  if (!keys.data) return <Loading what="keys" />;
  return (
    <Card title="Your keys">
      <p class="muted small">Ask an admin for a new key or to revoke one.</p>
      <Table columns={keyColumns(false)} rows={keys.data.items} rowKey={(k) => k.id} empty="No keys belong to this account." />
    </Card>
  );
}

export function Keys({ me }) {
  const tabs = [
    me.perms.has('admin.keys') && { id: 'keys', label: 'Keys', view: AdminKeys },
    !me.perms.has('admin.keys') && me.perms.has('self.keys') && { id: 'mine', label: 'My keys', view: MyKeys },
    me.perms.has('admin.users') && { id: 'users', label: 'Users', view: Users },
    me.roles && { id: 'roles', label: 'Roles', view: Roles },
  ].filter(Boolean);
  const [tab, setTab] = useState(tabs[0].id);
  const T = tabs.find((t) => t.id === tab).view;
  return (
    <div>
      <div class="page-head">
        <h1>Keys &amp; users</h1>
        {tabs.length > 1 && (
          <div class="segmented" role="tablist">
            {tabs.map((t) => <button key={t.id} role="tab" aria-selected={t.id === tab} class={t.id === tab ? 'on' : ''} onClick={() => setTab(t.id)}>{t.label}</button>)}
          </div>
        )}
      </div>
      <T me={me} />
    </div>
  );
}
