// A small syntax highlighter for code blocks: one tokenizer for C-like, Python-like and shell
// languages (comments, strings, numbers, keywords). It produces elements, never HTML, so code
// from a model cannot inject markup.

const KEYWORDS = new Set(('break case catch class const continue def default defer delete do elif else enum except export extends ' +
  'false finally fn for from func function go if impl import in interface is lambda let loop match mod module mut new nil None ' +
  'null package pass pub raise return select self static struct super switch this throw True true try type typeof use var void ' +
  'while with yield async await and or not as chan map range fi then done esac echo local int float double char bool string ' +
  'long short unsigned signed auto public private protected final abstract override virtual template typename namespace using').split(' '));

// One regular expression, alternatives in priority order: comment, string, number, word.
const TOKEN = /(\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|--[^\n]*)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)|(\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b|\b0x[0-9a-fA-F]+\b)|([A-Za-z_$][\w$]*)/g;

const HASH_COMMENTS = new Set(['python', 'py', 'sh', 'bash', 'shell', 'ruby', 'rb', 'yaml', 'yml', 'toml', 'r', 'perl', 'dockerfile', 'makefile', '']);
const DASH_COMMENTS = new Set(['sql', 'lua', 'haskell']);

export function tokens(code, lang) {
  const l = (lang || '').toLowerCase();
  const out = [];
  let last = 0;
  TOKEN.lastIndex = 0;
  for (let m; (m = TOKEN.exec(code));) {
    let kind = m[1] ? 'comment' : m[2] ? 'string' : m[3] ? 'number' : KEYWORDS.has(m[4]) ? 'keyword' : null;
    if (m[1]) {
      if (m[1][0] === '#' && !HASH_COMMENTS.has(l)) {
        // "#include" in C, "#[derive]" in Rust: a directive, not a comment.
        kind = 'keyword';
      } else if (m[1].startsWith('--') && !DASH_COMMENTS.has(l)) {
        kind = null;
      }
    }
    if (kind === null && m[4] && code[m.index + m[0].length] === '(') kind = 'call';
    if (kind === null) continue;
    if (m.index > last) out.push({ kind: '', text: code.slice(last, m.index) });
    out.push({ kind, text: m[0] });
    last = m.index + m[0].length;
  }
  if (last < code.length) out.push({ kind: '', text: code.slice(last) });
  return out;
}

export function Code({ code, lang }) {
  return (
    <pre class="code"><code data-lang={lang || ''}>{tokens(code, lang).map((t, i) => (t.kind ? <span key={i} class={'tok-' + t.kind}>{t.text}</span> : t.text))}</code></pre>
  );
}
