// Unit tests of text.js: node --test web/src/ (run by tests/console/run.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokens, csv } from './text.js';

const kinds = (code, lang) => tokens(code, lang).filter((t) => t.kind).map((t) => `${t.kind}:${t.text}`);

test('tokens cover the code exactly, in order', () => {
  for (const [code, lang] of [['def f(x):\n    return x + 1  # one\n', 'python'], ['x := "a\\"b" // c', 'go'], ['', ''], ['<script>alert(1)</script>', 'html']]) {
    assert.equal(tokens(code, lang).map((t) => t.text).join(''), code);
  }
});

test('python: keywords, calls, strings, numbers and comments', () => {
  assert.deepEqual(kinds('def add(a, b):\n    return a + 1.5  # sum\nprint("hi")', 'python'), [
    'keyword:def', 'call:add', 'keyword:return', 'number:1.5', 'comment:# sum', 'call:print', 'string:"hi"',
  ]);
});

test('C-like: line and block comments; a # directive is not a comment', () => {
  assert.deepEqual(kinds('#include <stdio.h>\n/* a\nb */ int main() { return 0x1F; } // end', 'c'), [
    'keyword:#include <stdio.h>', 'comment:/* a\nb */', 'keyword:int', 'call:main', 'keyword:return', 'number:0x1F', 'comment:// end',
  ]);
});

test('a keyword inside a string or comment stays part of it', () => {
  assert.deepEqual(kinds('s = "return if"  # for while', 'python'), ['string:"return if"', 'comment:# for while']);
});

test('SQL comments use --; elsewhere -- is an operator', () => {
  assert.deepEqual(kinds('select 1 -- note', 'sql'), ['keyword:select', 'number:1', 'comment:-- note']);
  assert.deepEqual(kinds('x--', 'c'), []);
});

test('csv quotes what needs quoting and defuses formulas', () => {
  assert.equal(csv([['a', 'b,c', 'say "hi"', 'two\nlines'], [1, null, undefined, '=HYPERLINK("x")']]),
    'a,"b,c","say ""hi""","two\nlines"\r\n1,,,"\'=HYPERLINK(""x"")"\r\n');
  assert.equal(csv([['+1', '-2', '@a', 'ok']]), "'+1,'-2,'@a,ok\r\n");
});
