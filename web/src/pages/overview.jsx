// Overview: requests, tokens, errors and latency over a window, from the usage records, and
// the backends at a glance.
import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { Card, ErrorBox, Loading, Stat, fmtInt, fmtMs, fmtNum, useLoad, usePoll } from '../ui.jsx';
import { LineChart, Bars } from '../chart.jsx';

export const windows = [
  { id: '1h', label: '1 hour', ms: 3600e3 },
  { id: '24h', label: '24 hours', ms: 86400e3 },
  { id: '7d', label: '7 days', ms: 7 * 86400e3 },
  { id: '30d', label: '30 days', ms: 30 * 86400e3 },
];

export function summaryPath(me, params) {
  const base = me.perms.has('admin.usage') ? '/v1/admin/usage/summary' : '/v1/me/usage/summary';
  return base + query(params);
}

export function WindowPicker({ value, onChange }) {
  return (
    <div class="segmented" role="group" aria-label="Time window">
      {windows.map((w) => <button key={w.id} type="button" class={w.id === value ? 'on' : ''} aria-pressed={w.id === value} onClick={() => onChange(w.id)}>{w.label}</button>)}
    </div>
  );
}

export function SummaryCharts({ sum }) {
  const times = sum.series.map((p) => new Date(p.time).getTime());
  return (
    <div class="grid charts">
      <Card><LineChart title="Requests" times={times} series={[
        { label: 'requests', cls: 's1', values: sum.series.map((p) => p.requests) },
        { label: 'errors', cls: 's3', values: sum.series.map((p) => p.errors) },
      ]} /></Card>
      <Card><LineChart title="Tokens" times={times} series={[
        { label: 'prompt', cls: 's2', values: sum.series.map((p) => p.prompt_tokens) },
        { label: 'completion', cls: 's1', values: sum.series.map((p) => p.completion_tokens) },
      ]} /></Card>
      <Card><LineChart title="Latency" times={times} format={fmtMs} series={[
        { label: 'average', cls: 's1', values: sum.series.map((p) => p.latency_avg_ms) },
        { label: 'p95', cls: 's4', values: sum.series.map((p) => p.latency_p95_ms) },
      ]} /></Card>
      <Card><Bars title="Requests by model" rows={sum.by_model.map((g) => ({ name: g.name, value: g.requests }))} /></Card>
    </div>
  );
}

export function Totals({ t }) {
  const errRate = t.requests ? (100 * t.errors) / t.requests : 0;
  return (
    <div class="grid stats">
      <Stat label="Requests" value={fmtInt(t.requests)} />
      <Stat label="Tokens" value={fmtNum(t.prompt_tokens + t.completion_tokens)} sub={`${fmtNum(t.prompt_tokens)} prompt · ${fmtNum(t.completion_tokens)} completion`} />
      <Stat label="Errors" value={fmtInt(t.errors)} sub={t.requests ? errRate.toFixed(1) + '% of requests' : ''} />
      <Stat label="Latency" value={fmtMs(t.latency_avg_ms)} sub={t.latency_p95_ms ? 'p95 ' + fmtMs(t.latency_p95_ms) : ''} />
    </div>
  );
}

function Backends() {
  const b = useLoad(() => get('/v1/admin/backends'), []);
  usePoll(b.reload, 5000, []);
  if (b.error) return <ErrorBox error={b.error} />;
  if (!b.data) return <Loading what="backends" />;
  const all = b.data.models.flatMap((m) => m.backends);
  const up = all.filter((x) => x.health === 'up').length;
  const open = all.filter((x) => x.circuit !== 'closed').length;
  const inflight = all.reduce((s, x) => s + x.inflight, 0);
  return (
    <div class="grid stats">
      <Stat label="Models" value={b.data.models.length} sub={b.data.models.filter((m) => m.ready).length + ' ready'} />
      <Stat label="Backends up" value={`${up} / ${all.length}`} sub={open ? `${open} circuit${open > 1 ? 's' : ''} not closed` : 'all circuits closed'} />
      <Stat label="In flight" value={inflight} sub={all.reduce((s, x) => s + x.queued, 0) + ' queued'} />
    </div>
  );
}

export function Overview({ me }) {
  const [win, setWin] = useState('24h');
  const hasUsage = me.auth && (me.perms.has('admin.usage') || me.perms.has('self.usage'));
  const ms = windows.find((w) => w.id === win).ms;
  const sum = useLoad(() => (hasUsage ? get(summaryPath(me, { from: new Date(Date.now() - ms).toISOString().replace(/\.\d+Z$/, 'Z') })) : Promise.resolve(null)), [win]);
  // A summary reads up to 100 000 records: refresh it now and then, not every few seconds.
  usePoll(sum.reload, 30000, [win]);
  return (
    <div>
      <div class="page-head">
        <h1>Overview</h1>
        {hasUsage && <WindowPicker value={win} onChange={setWin} />}
      </div>
      {me.perms.has('admin.backends') && <Backends />}
      {hasUsage && (sum.error ? <ErrorBox error={sum.error} /> : !sum.data ? <Loading what="usage" /> : (
        <>
          <p class="muted small">{me.perms.has('admin.usage') ? 'All callers' : 'Your requests'}, by {sum.data.step_seconds >= 3600 ? sum.data.step_seconds / 3600 + ' h' : sum.data.step_seconds / 60 + ' min'}.{sum.data.truncated ? ' Only the newest 100 000 requests are counted.' : ''}</p>
          <Totals t={sum.data.totals} />
          <SummaryCharts sum={sum.data} />
        </>
      ))}
      {!hasUsage && !me.perms.has('admin.backends') && <p class="muted">Nothing to show for your role here. Open the Playground to try a model.</p>}
    </div>
  );
}
