// Highlighted code blocks: the tokens of text.js as spans, never as HTML.
import { tokens } from './text.js';

export function Code({ code, lang }) {
  return (
    <pre class="code"><code data-lang={lang || ''}>{tokens(code, lang).map((t, i) => (t.kind ? <span key={i} class={'tok-' + t.kind}>{t.text}</span> : t.text))}</code></pre>
  );
}
