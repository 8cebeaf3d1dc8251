// Usage by key, user, model and day, with filters, charts, the records themselves and a CSV
// export. Admins read everyone's usage; a user reads their own.
import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { Card, ErrorBox, Field, Loading, Pager, Status, Table, download, fmtInt, fmtMs, fmtNum, fmtTime, useLoad, usePager } from '../ui.jsx';
import { csv } from '../text.js';
import { SummaryCharts, Totals, WindowPicker, summaryPath, windows } from './overview.jsx';

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

const groupColumns = (label) => [
  { key: 'name', label, render: (g) => <span class="mono small">{g.name || '(none)'}</span> },
  { key: 'requests', label: 'Requests', num: true, render: (g) => fmtInt(g.requests) },
  { key: 'errors', label: 'Errors', num: true, render: (g) => fmtInt(g.errors) },
  { key: 'prompt', label: 'Prompt tokens', num: true, render: (g) => fmtInt(g.prompt_tokens) },
  { key: 'completion', label: 'Completion tokens', num: true, render: (g) => fmtInt(g.completion_tokens) },
  { key: 'lat', label: 'Avg latency', num: true, render: (g) => fmtMs(g.latency_avg_ms) },
  { key: 'tps', label: 'Tokens/s', num: true, render: (g) => fmtNum(g.tokens_per_second) },
];

const recordColumns = [
  { key: 'time', label: 'Time', render: (r) => fmtTime(r.time) },
  { key: 'model', label: 'Model', render: (r) => <span class="mono">{r.model}</span> },
  { key: 'backend', label: 'Backend', render: (r) => <span class="mono small">{r.backend || '–'}</span> },
  { key: 'key_id', label: 'Key', render: (r) => <span class="mono small">{r.key_id || '–'}</span> },
  { key: 'user_id', label: 'User', render: (r) => <span class="mono small">{r.user_id || '–'}</span> },
  { key: 'prompt', label: 'Prompt', num: true, render: (r) => fmtInt(r.prompt_tokens) },
  { key: 'completion', label: 'Completion', num: true, render: (r) => fmtInt(r.completion_tokens) },
  { key: 'latency', label: 'Latency', num: true, render: (r) => fmtMs(r.latency_ns / 1e6) },
  { key: 'status', label: 'Status', render: (r) => <Status value={r.status < 400 ? 'ok' : 'error'} /> },
  { key: 'trace', label: 'Trace', render: (r) => <span class="mono small">{r.trace_id || ''}</span> },
];

const EXPORT_MAX = 20000;

export function Usage({ me }) {
  const admin = me.perms.has('admin.usage');
  const [win, setWin] = useState('24h');
  const [draft, setDraft] = useState({ key_id: '', user_id: '', model: '' });
  const [filter, setFilter] = useState(draft);
  const [group, setGroup] = useState('model');
  const [exporting, setExporting] = useState(null);
  const pager = usePager();
  const from = iso(Date.now() - windows.find((w) => w.id === win).ms);
  const params = admin ? { ...filter, from } : { model: filter.model, from };
  const base = admin ? '/v1/admin/usage' : '/v1/me/usage';
  const sum = useLoad(() => get(summaryPath(me, params)), [win, filter]);
  const recs = useLoad(() => get(base + query({ ...params, cursor: pager.cursor, limit: 50 })), [win, filter, pager.cursor]);
  const apply = (e) => { e.preventDefault(); pager.reset(); setFilter({ ...draft }); };
  const exportCSV = async () => {
    setExporting('Exporting…');
    try {
      const rows = [['time', 'model', 'backend', 'key_id', 'user_id', 'prompt_tokens', 'completion_tokens', 'latency_ms', 'status', 'trace_id']];
      let cursor = '';
      do {
        const page = await get(base + query({ ...params, cursor, limit: 1000 }));
        for (const r of page.items) rows.push([r.time, r.model, r.backend, r.key_id, r.user_id, r.prompt_tokens, r.completion_tokens, (r.latency_ns / 1e6).toFixed(1), r.status, r.trace_id]);
        cursor = page.next;
      } while (cursor && rows.length <= EXPORT_MAX);
      download(`autoglm-usage-${win}.csv`, csv(rows), 'text/csv');
      setExporting(null);
    } catch (err) {
      setExporting(err.message);
    }
  };
  const groups = sum.data && { model: sum.data.by_model, key: sum.data.by_key, user: sum.data.by_user, day: sum.data.by_day }[group];
  return (
    <div>
      <div class="page-head">
        <h1>Usage</h1>
        <WindowPicker value={win} onChange={(w) => { pager.reset(); setWin(w); }} />
      </div>
      <Card>
        <form class="form-grid filters" onSubmit={apply} aria-label="Filter usage">
          {admin && <Field label="Key ID"><input name="key_id" value={draft.key_id} onInput={(e) => setDraft({ ...draft, key_id: e.currentTarget.value.trim() })} placeholder="key_…" /></Field>}
          {admin && <Field label="User ID"><input name="user_id" value={draft.user_id} onInput={(e) => setDraft({ ...draft, user_id: e.currentTarget.value.trim() })} placeholder="usr_…" /></Field>}
          <Field label="Model"><input name="model" value={draft.model} onInput={(e) => setDraft({ ...draft, model: e.currentTarget.value.trim() })} /></Field>
          <div class="form-actions">
            <button class="btn primary" type="submit">Apply</button>
            <button class="btn" type="button" onClick={exportCSV} disabled={!!exporting} data-export>Export CSV</button>
            {exporting && <span class="muted small">{exporting}</span>}
          </div>
        </form>
      </Card>
      {sum.error ? <ErrorBox error={sum.error} /> : !sum.data ? <Loading what="summary" /> : <>
        <Totals t={sum.data.totals} />
        <SummaryCharts sum={sum.data} />
        <Card title="Breakdown" actions={
          <div class="segmented" role="tablist">
            {[['model', 'Model'], admin && ['key', 'Key'], admin && ['user', 'User'], ['day', 'Day']].filter(Boolean).map(([id, label]) => (
              <button key={id} role="tab" aria-selected={group === id} class={group === id ? 'on' : ''} onClick={() => setGroup(id)}>{label}</button>
            ))}
          </div>
        }>
          <Table columns={groupColumns({ model: 'Model', key: 'Key', user: 'User', day: 'Day (UTC)' }[group])} rows={groups} rowKey={(g) => g.name} empty="No requests in this window." />
        </Card>
      </>}
      <Card title="Requests">
        {recs.error ? <ErrorBox error={recs.error} /> : !recs.data ? <Loading what="records" /> : <>
          <Table columns={admin ? recordColumns : recordColumns.filter((c) => c.key !== 'user_id')} rows={recs.data.items} rowKey={(r) => r.id} empty="No requests in this window." />
          <Pager pager={pager} next={recs.data.next} />
        </>}
      </Card>
    </div>
  );
}
