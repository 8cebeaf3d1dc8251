// The audit log: every admin operation (reads included) and every refused admin request,
// newest first, with filters and pages.
import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { Card, ErrorBox, Field, Loading, Pager, Status, Table, fmtTime, useLoad, usePager } from '../ui.jsx';

function Details({ d }) {
  const [open, setOpen] = useState(false);
  if (!d) return null;
  const text = typeof d === 'string' ? d : JSON.stringify(d, null, 2);
  return open
    ? <div><pre class="details">{text}</pre><button class="btn small" onClick={() => setOpen(false)}>Hide</button></div>
    : <button class="btn small" onClick={() => setOpen(true)}>Details</button>;
}

export function Audit() {
  const empty = { actor: '', action: '', target: '', result: '', from: '', to: '' };
  const [draft, setDraft] = useState(empty);
  const [filter, setFilter] = useState(empty);
  const pager = usePager();
  const toISO = (v) => (v ? new Date(v).toISOString().replace(/\.\d+Z$/, 'Z') : '');
  const data = useLoad(() => get('/v1/admin/audit' + query({ ...filter, from: toISO(filter.from), to: toISO(filter.to), cursor: pager.cursor, limit: 50 })), [filter, pager.cursor]);
  const set = (k) => (e) => setDraft({ ...draft, [k]: e.currentTarget.value });
  const apply = (e) => { e.preventDefault(); pager.reset(); setFilter({ ...draft }); };
  return (
    <div>
      <div class="page-head"><h1>Audit log</h1></div>
      <Card>
        <form class="form-grid filters" onSubmit={apply} aria-label="Filter the audit log">
          <Field label="Actor"><input name="actor" value={draft.actor} onInput={set('actor')} placeholder="key_… or bootstrap" /></Field>
          <Field label="Action"><input name="action" value={draft.action} onInput={set('action')} placeholder="key.create" list="audit-actions" /></Field>
          <datalist id="audit-actions">
            {['user.create', 'user.list', 'user.get', 'user.update', 'user.disable', 'key.create', 'key.list', 'key.revoke', 'usage.query', 'usage.summary', 'audit.query'].map((a) => <option key={a} value={a} />)}
          </datalist>
          <Field label="Target"><input name="target" value={draft.target} onInput={set('target')} /></Field>
          <Field label="Result">
            <select name="result" value={draft.result} onChange={set('result')}>
              <option value="">any</option><option value="ok">ok</option><option value="denied">denied</option><option value="error">error</option>
            </select>
          </Field>
          <Field label="From"><input name="from" type="datetime-local" value={draft.from} onInput={set('from')} /></Field>
          <Field label="To"><input name="to" type="datetime-local" value={draft.to} onInput={set('to')} /></Field>
          <div class="form-actions">
            <button class="btn primary" type="submit">Apply</button>
            <button class="btn" type="button" onClick={() => { setDraft(empty); pager.reset(); setFilter(empty); }}>Clear</button>
          </div>
        </form>
      </Card>
      <Card>
        {data.error ? <ErrorBox error={data.error} /> : !data.data ? <Loading what="the audit log" /> : <>
          <Table rowKey={(r) => r.id} rows={data.data.items} empty="No records match." columns={[
            { key: 'time', label: 'Time', render: (r) => fmtTime(r.time) },
            { key: 'actor', label: 'Actor', render: (r) => <span class="mono small">{r.actor}</span> },
            { key: 'action', label: 'Action', render: (r) => <span class="mono">{r.action}</span> },
            { key: 'target', label: 'Target', render: (r) => <span class="mono small">{r.target || '–'}</span> },
            { key: 'result', label: 'Result', render: (r) => <Status value={r.result} /> },
            { key: 'client', label: 'Client', render: (r) => <span class="mono small">{r.client_addr || ''}</span> },
            { key: 'details', label: '', render: (r) => <Details d={r.details} /> },
          ]} />
          <Pager pager={pager} next={data.data.next} />
        </>}
      </Card>
    </div>
  );
}
