// Tasks: the caller's asynchronous tasks (an admin's: everyone's), live; a task's detail
// follows its event stream (GET /v1/task/{id}/events), shows the result with highlighted
// code blocks, and can cancel it.
import { useEffect, useState } from 'preact/hooks';
import { call, get, query, stream } from '../api.js';
import { Badge, Card, ErrorBox, Field, Loading, Pager, Status, Table, fmtInt, fmtTime, useLoad, usePager, usePoll } from '../ui.jsx';
import { Code } from '../highlight.jsx';

const terminal = (s) => s === 'succeeded' || s === 'failed' || s === 'canceled';

function TaskList() {
  const [status, setStatus] = useState('');
  const pager = usePager();
  const list = useLoad(() => get('/v1/tasks' + query({ status, cursor: pager.cursor, limit: 25 })), [status, pager.cursor]);
  usePoll(list.reload, 2000, [status, pager.cursor]);
  return (
    <div>
      <div class="page-head">
        <h1>Tasks</h1>
        <Field label="Status">
          <select name="status" value={status} onChange={(e) => { pager.reset(); setStatus(e.currentTarget.value); }}>
            {['', 'queued', 'running', 'succeeded', 'failed', 'canceled'].map((s) => <option key={s} value={s}>{s || 'any'}</option>)}
          </select>
        </Field>
      </div>
      <Card>
        {list.error ? <ErrorBox error={list.error} /> : !list.data ? <Loading what="tasks" /> : <>
          <Table rowKey={(t) => t.task_id} rows={list.data.items} empty="No tasks yet. Submit one from the Playground." columns={[
            { key: 'id', label: 'Task', render: (t) => <a class="mono" href={'#/tasks/' + encodeURIComponent(t.task_id)}>{t.task_id}</a> },
            { key: 'kind', label: 'Kind', render: (t) => <Badge>{t.kind}</Badge> },
            { key: 'model', label: 'Model', render: (t) => <span class="mono">{t.model}</span> },
            { key: 'status', label: 'Status', render: (t) => <Status value={t.status} /> },
            { key: 'tokens', label: 'Tokens', num: true, render: (t) => fmtInt(t.progress && t.progress.tokens) },
            { key: 'created', label: 'Created', render: (t) => fmtTime(t.created_at) },
            { key: 'finished', label: 'Finished', render: (t) => fmtTime(t.finished_at) },
          ]} />
          <Pager pager={pager} next={list.data.next} />
        </>}
      </Card>
    </div>
  );
}

// useTaskEvents follows the task's event stream until its terminal status event, resuming
// after the last event seen if the connection drops.
function useTaskEvents(id, onStatus) {
  const [events, setEvents] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    const ctl = new AbortController();
    let last = '';
    let done = false;
    (async () => {
      for (let attempt = 0; !done && !ctl.signal.aborted && attempt < 20; attempt++) {
        try {
          await stream('GET', '/v1/task/' + encodeURIComponent(id) + '/events', undefined, (ev) => {
            last = ev.id || last;
            let data = ev.data;
            try { data = JSON.parse(ev.data); } catch { /* keep the text */ }
            setEvents((es) => [...es, { id: ev.id, type: ev.event, data }]);
            if (ev.event === 'status') {
              onStatus(data);
              if (terminal(data.status)) done = true;
            }
          }, { signal: ctl.signal, headers: last ? { 'Last-Event-ID': last } : {} });
          setError(null);
          if (!done) await new Promise((r) => setTimeout(r, 1000));
        } catch (err) {
          if (ctl.signal.aborted) return;
          setError(err);
          if (err.status && err.status < 500) return;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
    return () => ctl.abort();
  }, [id]);
  return { events, error };
}

function TaskDetail({ id }) {
  const task = useLoad(() => get('/v1/task/' + encodeURIComponent(id)), [id]);
  const [cancelErr, setCancelErr] = useState(null);
  const { events, error } = useTaskEvents(id, (st) => { if (terminal(st.status)) task.reload(); });
  const live = events.filter((e) => e.type === 'tokens').map((e) => e.data.text || '').join('');
  const lastStatus = [...events].reverse().find((e) => e.type === 'status');
  const t = task.data;
  const status = lastStatus ? lastStatus.data.status : t && t.status;
  const cancel = async () => {
    setCancelErr(null);
    try {
      await call('POST', '/v1/task/' + encodeURIComponent(id) + '/cancel');
      task.reload();
    } catch (err) {
      setCancelErr(err);
    }
  };
  return (
    <div>
      <div class="page-head">
        <h1><a href="#/tasks" class="muted">Tasks</a> / <span class="mono">{id}</span></h1>
        <span data-task-status={status || ''}>{status && <Status value={status} />}</span>
        {status && !terminal(status) && <button class="btn danger" onClick={cancel}>Cancel</button>}
      </div>
      <ErrorBox error={task.error || cancelErr} />
      {!t ? <Loading what="the task" /> : (
        <Card>
          <dl class="facts">
            <dt>Kind</dt><dd><Badge>{t.kind}</Badge></dd>
            <dt>Model</dt><dd class="mono">{t.model}</dd>
            <dt>Attempts</dt><dd>{t.attempts} of {t.max_attempts}</dd>
            <dt>Created</dt><dd>{fmtTime(t.created_at)}</dd>
            {t.started_at && <><dt>Started</dt><dd>{fmtTime(t.started_at)}</dd></>}
            {t.finished_at && <><dt>Finished</dt><dd>{fmtTime(t.finished_at)}</dd></>}
            {t.result && t.result.usage && <><dt>Tokens</dt><dd>{t.result.usage.prompt_tokens} prompt · {t.result.usage.completion_tokens} completion</dd></>}
            {t.error && <><dt>Error</dt><dd class="bad">{t.error.code}: {t.error.message}</dd></>}
          </dl>
        </Card>
      )}
      {t && t.result && t.result.code && t.result.code.length > 0 && (
        <Card title="Code">
          {t.result.code.map((b, i) => <div key={i} class="code-block"><div class="code-head"><Badge>{b.language || 'text'}</Badge></div><Code code={b.code} lang={b.language} /></div>)}
        </Card>
      )}
      <Card title={t && t.result ? 'Result' : 'Live output'}>
        <pre class="output" data-task-output>{(t && t.result && t.result.text) || live || <span class="muted">{status && terminal(status) ? 'No output.' : 'Waiting for tokens…'}</span>}</pre>
      </Card>
      <Card title="Events">
        <ErrorBox error={error} />
        <Table rowKey={(e) => e.id} rows={events} empty="No events yet." columns={[
          { key: 'id', label: '#', num: true },
          { key: 'type', label: 'Event', render: (e) => <Badge>{e.type}</Badge> },
          { key: 'data', label: 'Data', render: (e) => <span class="mono small">{e.type === 'tokens' ? JSON.stringify(e.data.text) : e.data.status ? e.data.status + (e.data.reason ? ' · ' + e.data.reason : '') : JSON.stringify(e.data).slice(0, 200)}</span> },
        ]} />
      </Card>
    </div>
  );
}

export function Tasks({ arg }) {
  return arg ? <TaskDetail id={arg} key={arg} /> : <TaskList />;
}
