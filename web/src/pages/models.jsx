// Models and backends: the models the caller may use and, for admins, every backend's
// health, circuit, load, moving latencies and canary weights (GET /v1/admin/backends), with
// each model's throughput over the last day from the usage records.
import { get } from '../api.js';
import { Badge, Card, ErrorBox, Loading, Status, Table, fmtInt, fmtMs, fmtNum, useLoad, usePoll } from '../ui.jsx';
import { summaryPath } from './overview.jsx';

function errorsText(errs) {
  const e = Object.entries(errs || {}).filter(([, n]) => n > 0);
  return e.length ? e.map(([k, n]) => `${k} ${n}`).join(', ') : '–';
}

const backendColumns = [
  { key: 'name', label: 'Backend', render: (b) => <span class="mono">{b.name}</span> },
  { key: 'type', label: 'Type', render: (b) => <Badge>{b.type}</Badge> },
  { key: 'weight', label: 'Weight', num: true },
  { key: 'health', label: 'Health', render: (b) => <Status value={b.health} /> },
  { key: 'circuit', label: 'Circuit', render: (b) => <span><Status value={b.circuit} />{b.circuit_opens ? <span class="muted small"> opened {b.circuit_opens}×</span> : null}</span> },
  { key: 'inflight', label: 'In flight', num: true, render: (b) => `${b.inflight}${b.max_inflight ? ' / ' + b.max_inflight : ''}` },
  { key: 'queued', label: 'Queue', num: true, render: (b) => `${b.queued}${b.queue ? ' / ' + b.queue : ''}` },
  { key: 'requests', label: 'Requests', num: true, render: (b) => fmtInt(b.requests) },
  { key: 'ok', label: 'Success', num: true, render: (b) => (b.requests ? ((100 * b.successes) / b.requests).toFixed(1) + '%' : '–') },
  { key: 'ttft', label: 'EWMA TTFT', num: true, render: (b) => fmtMs(b.ewma_ttft_ms) },
  { key: 'lat', label: 'EWMA latency', num: true, render: (b) => fmtMs(b.ewma_latency_ms) },
  { key: 'errors', label: 'Errors', render: (b) => <span class="small">{errorsText(b.errors)}</span> },
];

function ModelCard({ m, speed }) {
  const total = (m.split || []).reduce((s, x) => s + x.weight, 0);
  return (
    <Card title={<span class="mono">{m.name}</span>} actions={<>
      <Status value={m.ready ? 'up' : 'down'} />
      <Badge>{m.strategy}</Badge>
    </>}>
      <dl class="facts">
        {m.aliases && m.aliases.length > 0 && <><dt>Aliases</dt><dd class="mono">{m.aliases.join(', ')}</dd></>}
        {m.fallbacks && m.fallbacks.length > 0 && <><dt>Fallbacks</dt><dd class="mono">{m.fallbacks.join(' → ')}</dd></>}
        {m.split && m.split.length > 0 && <><dt>Canary split</dt><dd>{m.split.map((s) => <span key={s.model} class="split"><span class="mono">{s.model}</span> {total ? Math.round((100 * s.weight) / total) : 0}%</span>)}</dd></>}
        <dt>Requests</dt><dd>{fmtInt(m.requests)} · retries {fmtInt(m.retries)}{m.retries_denied ? ` (${m.retries_denied} refused)` : ''}{m.queue_refusals ? ` · queue full ${m.queue_refusals}×` : ''}</dd>
        {speed && <><dt>Last 24 h</dt><dd>{fmtInt(speed.requests)} request{speed.requests === 1 ? '' : 's'} · {fmtNum(speed.tokens_per_second)} tokens/s · p95 {fmtMs(speed.latency_p95_ms)}</dd></>}
      </dl>
      {m.backends.length > 0 && <Table columns={backendColumns} rows={m.backends} rowKey={(b) => b.name} />}
    </Card>
  );
}

const mib = (b) => (b ? (b / (1 << 20)).toFixed(b < 10 << 20 ? 1 : 0) + ' MiB' : '–');

// Engine shows the in-process engine's models: what each file holds, its load, its size
// (the file is mapped into memory) and its throughput over the last day.
function Engine({ engine, speed }) {
  const p = engine.process;
  return (
    <Card title="Local engine" actions={<span class="muted small">process: {mib(p.heap_bytes)} heap · {mib(p.sys_bytes)} from the OS · {p.goroutines} goroutines · {p.cpus} CPUs</span>}>
      <Table rowKey={(m) => m.backend} rows={engine.models} empty="No local models: every model is served by an upstream." columns={[
        { key: 'model', label: 'Model', render: (m) => <span class="mono">{m.model}</span> },
        { key: 'arch', label: 'Architecture', render: (m) => <span>{m.arch}{m.name && m.name !== m.arch ? <span class="muted small"> · {m.name}</span> : null}</span> },
        { key: 'template', label: 'Template', render: (m) => <Badge>{m.template}</Badge> },
        { key: 'ctx', label: 'Context', num: true, render: (m) => fmtInt(m.context_length) },
        { key: 'vocab', label: 'Vocabulary', num: true, render: (m) => fmtInt(m.vocab_size) },
        { key: 'mem', label: 'Weights (mapped)', num: true, render: (m) => mib(m.file_bytes) },
        { key: 'load', label: 'Running / waiting', num: true, render: (m) => `${m.running} / ${m.waiting}` },
        { key: 'tps', label: 'Tokens/s (24 h)', num: true, render: (m) => (speed[m.model] ? fmtNum(speed[m.model].tokens_per_second) : '–') },
      ]} />
    </Card>
  );
}

export function Models({ me }) {
  const admin = me.perms.has('admin.backends');
  const hasUsage = me.auth && (me.perms.has('admin.usage') || me.perms.has('self.usage'));
  const data = useLoad(async () => {
    const [list, backends, engine] = await Promise.all([
      me.perms.has('models.list') ? get('/v1/models') : null,
      admin ? get('/v1/admin/backends') : null,
      admin ? get('/v1/admin/engine') : null,
    ]);
    return { list, backends, engine };
  }, []);
  usePoll(data.reload, 5000, []);
  // Throughput comes from a day of usage records: read once, not with every refresh.
  const usage = useLoad(() => (hasUsage ? get(summaryPath(me, {})).catch(() => null) : Promise.resolve(null)), []);
  if (data.error) return <ErrorBox error={data.error} />;
  if (!data.data) return <Loading what="models" />;
  const { list, backends, engine } = data.data;
  const sum = usage.data;
  const speed = Object.fromEntries(((sum && sum.by_model) || []).map((g) => [g.name, g]));
  return (
    <div>
      <div class="page-head"><h1>Models</h1><span class="muted small">refreshed every 5 s</span></div>
      {engine && <Engine engine={engine} speed={speed} />}
      {backends ? backends.models.map((m) => <ModelCard key={m.name} m={m} speed={speed[m.name]} />) : (
        <Card title="Models you may use">
          <Table columns={[
            { key: 'id', label: 'Model', render: (m) => <span class="mono">{m.id}</span> },
            { key: 'owned_by', label: 'Owner' },
            { key: 'tps', label: 'Tokens/s (24 h)', num: true, render: (m) => (speed[m.id] ? fmtNum(speed[m.id].tokens_per_second) : '–') },
          ]} rows={(list && list.data) || []} rowKey={(m) => m.id} empty="No models are open to this credential." />
        </Card>
      )}
    </div>
  );
}
