// Playground: a streamed chat with any model the caller may use, with its parameters, time to
// first token, tokens per second and the trace id; and code-generation task submission.
import { useRef, useState } from 'preact/hooks';
import { call, get, stream } from '../api.js';
import { Card, Copy, ErrorBox, Field, Loading, fmtMs, fmtNum, useLoad } from '../ui.jsx';

function Chat({ models }) {
  const [model, setModel] = useState(models[0] || '');
  const [system, setSystem] = useState('');
  const [input, setInput] = useState('');
  const [params, setParams] = useState({ temperature: 0.7, top_p: 1, max_tokens: 256 });
  const [messages, setMessages] = useState([]);
  const [reply, setReply] = useState(null);
  const [stats, setStats] = useState(null);
  const [error, setError] = useState(null);
  const ctl = useRef(null);
  const busy = reply !== null;
  const send = async (e) => {
    e.preventDefault();
    const text = input.trim();
    if (!text || busy) return;
    const history = [...messages, { role: 'user', content: text }];
    setMessages(history);
    setInput('');
    setError(null);
    setStats(null);
    setReply('');
    const body = {
      model, stream: true, stream_options: { include_usage: true },
      temperature: Number(params.temperature), top_p: Number(params.top_p), max_tokens: Number(params.max_tokens),
      messages: system.trim() ? [{ role: 'system', content: system.trim() }, ...history] : history,
    };
    const start = performance.now();
    let first = 0;
    let chunks = 0;
    let usage = null;
    let trace = '';
    let text2 = '';
    ctl.current = new AbortController();
    try {
      await stream('POST', '/v1/chat/completions', body, (ev) => {
        if (ev.data === '[DONE]') return;
        const msg = JSON.parse(ev.data);
        if (msg.usage) usage = msg.usage;
        const delta = msg.choices && msg.choices[0] && msg.choices[0].delta;
        if (delta && delta.content) {
          if (!first) first = performance.now();
          chunks++;
          text2 += delta.content;
          setReply(text2);
        }
      }, { signal: ctl.current.signal, onResponse: (res) => { trace = res.headers.get('X-Trace-Id') || ''; } });
    } catch (err) {
      if (err.name !== 'AbortError') setError(err);
    }
    const end = performance.now();
    const tokens = (usage && usage.completion_tokens) || chunks;
    const genMs = first ? end - first : 0;
    setStats({ ttft: first ? first - start : 0, total: end - start, tokens, tps: genMs > 0 && tokens > 1 ? ((tokens - 1) * 1000) / genMs : 0, trace, usage });
    if (text2) setMessages([...history, { role: 'assistant', content: text2 }]);
    setReply(null);
  };
  const p = (k) => (e) => setParams({ ...params, [k]: e.currentTarget.value });
  return (
    <div class="playground">
      <Card title="Chat" class="chat">
        <div class="messages" aria-live="polite" data-messages>
          {messages.length === 0 && !busy && <p class="muted empty">Send a message to start.</p>}
          {messages.map((m, i) => <div key={i} class={'msg ' + m.role}><div class="msg-role">{m.role}</div><div class="msg-text">{m.content}</div></div>)}
          {busy && <div class="msg assistant streaming"><div class="msg-role">assistant</div><div class="msg-text" data-streaming>{reply}<span class="cursor" aria-hidden="true">▍</span></div></div>}
        </div>
        <ErrorBox error={error} />
        {stats && (
          <div class="run-stats" data-stats>
            <span>TTFT <strong data-ttft>{fmtMs(stats.ttft)}</strong></span>
            <span><strong>{fmtNum(stats.tps)}</strong> tokens/s</span>
            <span><strong>{stats.tokens}</strong> tokens in {fmtMs(stats.total)}</span>
            {stats.trace && <span>trace <code class="mono" data-trace>{stats.trace}</code> <Copy text={stats.trace} /></span>}
          </div>
        )}
        <form class="composer" onSubmit={send}>
          <textarea name="prompt" rows="3" value={input} onInput={(e) => setInput(e.currentTarget.value)} placeholder="Message…" onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e); }} />
          <div class="composer-actions">
            {busy ? <button class="btn" type="button" onClick={() => ctl.current && ctl.current.abort()}>Stop</button>
              : <button class="btn primary" type="submit" disabled={!model}>Send</button>}
            <button class="btn" type="button" disabled={busy} onClick={() => { setMessages([]); setStats(null); }}>Clear</button>
          </div>
        </form>
      </Card>
      <Card title="Parameters" class="params">
        <Field label="Model">
          <select name="model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {models.map((m) => <option key={m} value={m}>{m}</option>)}
          </select>
        </Field>
        <Field label="System prompt"><textarea name="system" rows="3" value={system} onInput={(e) => setSystem(e.currentTarget.value)} /></Field>
        <Field label={`Temperature ${params.temperature}`}><input type="range" min="0" max="2" step="0.1" value={params.temperature} onInput={p('temperature')} /></Field>
        <Field label={`Top p ${params.top_p}`}><input type="range" min="0" max="1" step="0.05" value={params.top_p} onInput={p('top_p')} /></Field>
        <Field label="Max tokens"><input type="number" min="1" max="32768" value={params.max_tokens} onInput={p('max_tokens')} /></Field>
      </Card>
    </div>
  );
}

function CodeTask({ models }) {
  const [f, setF] = useState({ model: models[0] || '', language: 'python', prompt: '', max_tokens: 256 });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = await call('POST', '/v1/generate/code', { model: f.model, language: f.language, prompt: f.prompt, max_tokens: Number(f.max_tokens) });
      location.hash = '#/tasks/' + encodeURIComponent(t.task_id);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  return (
    <Card title="Code generation task">
      <p class="muted small">Runs in the background as a task (POST /v1/generate/code); the task page follows it live.</p>
      <form class="form-grid" onSubmit={submit} aria-label="Submit a code task">
        <Field label="Model">
          <select name="task_model" value={f.model} onChange={set('model')}>
            {models.map((m) => <option key={m} value={m}>{m}</option>)}
          </select>
        </Field>
        <Field label="Language"><input name="language" value={f.language} onInput={set('language')} /></Field>
        <Field label="Max tokens"><input name="task_max_tokens" type="number" min="1" value={f.max_tokens} onInput={set('max_tokens')} /></Field>
        <Field label="What to write"><textarea name="task_prompt" rows="4" value={f.prompt} onInput={set('prompt')} required placeholder="A function that reverses a string." /></Field>
        <div class="form-actions"><button class="btn primary" type="submit" disabled={busy}>Submit task</button></div>
      </form>
      <ErrorBox error={error} />
    </Card>
  );
}

export function Playground() {
  const [tab, setTab] = useState('chat');
  const list = useLoad(() => get('/v1/models'), []);
  const models = list.data ? list.data.data.map((m) => m.id) : [];
  return (
    <div>
      <div class="page-head">
        <h1>Playground</h1>
        <div class="segmented" role="tablist">
          <button role="tab" aria-selected={tab === 'chat'} class={tab === 'chat' ? 'on' : ''} onClick={() => setTab('chat')}>Chat</button>
          <button role="tab" aria-selected={tab === 'code'} class={tab === 'code' ? 'on' : ''} onClick={() => setTab('code')}>Code task</button>
        </div>
      </div>
      {list.error ? <ErrorBox error={list.error} /> : !list.data ? <Loading what="models" /> : models.length === 0 ? <p class="muted">No models are open to this credential.</p>
        : tab === 'chat' ? <Chat models={models} /> : <CodeTask models={models} />}
    </div>
  );
}
