// Text helpers without a user interface, tested by text.test.mjs under plain node: the code
// tokenizer behind the highlighted code blocks, and CSV writing for the usage export.

// A small syntax tokenizer for code blocks: one pass for C-like, Python-like and shell
// languages (comments, strings, numbers, keywords, calls). The console renders the tokens as
// elements, never as HTML, so code from a model cannot inject markup.
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


// csv writes rows as RFC 4180 CSV and neutralises cells a spreadsheet would run as a formula.
export function csv(rows) {
  const cell = (v) => {
    let s = v === undefined || v === null ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}
