import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { KINDS, luhn, maskText, maskJsonText, maskEveryString, InvalidJson } from '../src/pii.js';
import { TRUE_POSITIVES, FALSE_POSITIVES, ONLY_CASES } from './cases.js';

const ALL = new Set(KINDS);

describe('maskText: true positives are masked', () => {
  for (const [input, expected, note] of TRUE_POSITIVES) {
    it(`${note}: ${input}`, () => {
      assert.equal(maskText(input, ALL), expected);
    });
  }
});

describe('maskText: false positives survive unmasked', () => {
  for (const [input, note] of FALSE_POSITIVES) {
    it(`${note}: ${input}`, () => {
      assert.equal(maskText(input, ALL), input);
    });
  }
});

describe('maskText: only= selects kinds', () => {
  for (const [only, input, expected] of ONLY_CASES) {
    it(`only=${only}`, () => {
      const kinds = new Set(only.split(',').map((k) => k.trim()));
      assert.equal(maskText(input, kinds), expected);
    });
  }
});

describe('maskText: counts', () => {
  it('counts each match by kind', () => {
    const counts = { email: 0, phone: 0, card: 0 };
    maskText('a@example.com b@example.com +49 30 1234567 4111111111111111', ALL, counts);
    assert.deepEqual(counts, { email: 2, phone: 1, card: 1 });
  });
});

describe('luhn', () => {
  const table = [
    ['4111111111111111', true],
    ['4111111111111112', false],
    ['378282246310005', true],
    ['79927398713', true],
    ['79927398710', false],
    ['0', true],
  ];
  for (const [digits, ok] of table) {
    it(`${digits} -> ${ok}`, () => assert.equal(luhn(digits), ok));
  }
});

describe('maskJsonText', () => {
  it('masks inside a content item whose text is JSON text, keeping it parseable', () => {
    const inner = JSON.stringify({ user: { email: 'alice@example.com', phone: '(202) 555-0147' }, card: '4111 1111 1111 1111' });
    const result = JSON.stringify({ content: [{ type: 'text', text: inner }], isError: false });
    const { text, counts, changed } = maskJsonText(result, ALL);
    assert.equal(changed, true);
    assert.deepEqual(counts, { email: 1, phone: 1, card: 1 });
    const outer = JSON.parse(text);
    const parsedInner = JSON.parse(outer.content[0].text);
    assert.deepEqual(parsedInner, {
      user: { email: '[REDACTED:email]', phone: '[REDACTED:phone]' },
      card: '[REDACTED:card]',
    });
  });

  it('keeps a pretty-printed inner JSON text parseable and pretty', () => {
    const inner = JSON.stringify({ contacts: [{ name: 'Alice', email: 'alice@example.com' }] }, null, 2);
    const result = JSON.stringify({ content: [{ type: 'text', text: inner }] });
    const out = JSON.parse(maskJsonText(result, ALL).text).content[0].text;
    assert.equal(out, inner.replace('alice@example.com', '[REDACTED:email]'));
    JSON.parse(out);
  });

  it('masks prose text items', () => {
    const result = JSON.stringify({ content: [{ type: 'text', text: 'Write to alice@example.com or call +49 30 1234567.' }] });
    const out = JSON.parse(maskJsonText(result, ALL).text);
    assert.equal(out.content[0].text, 'Write to [REDACTED:email] or call [REDACTED:phone].');
  });

  it('masks structuredContent at any depth, in objects and arrays', () => {
    const result = JSON.stringify({
      content: [],
      structuredContent: {
        users: [
          { id: 1, email: 'alice@example.com', notes: ['paid with 4111-1111-1111-1111'] },
          { id: 2, email: 'bob@example.org', phones: { home: '+1-202-555-0147' } },
        ],
        created: '2024-01-15T10:30:00Z',
      },
      isError: false,
    });
    const out = JSON.parse(maskJsonText(result, ALL).text);
    assert.deepEqual(out.structuredContent, {
      users: [
        { id: 1, email: '[REDACTED:email]', notes: ['paid with [REDACTED:card]'] },
        { id: 2, email: '[REDACTED:email]', phones: { home: '[REDACTED:phone]' } },
      ],
      created: '2024-01-15T10:30:00Z',
    });
    assert.equal(out.isError, false);
  });

  it('masks object keys and keeps colliding keys apart', () => {
    const result = '{"byEmail":{"alice@example.com":1,"bob@example.com":2,"carol@example.com":3},"x":{"alice@example.com":4}}';
    const { text } = maskJsonText(result, ALL);
    assert.equal(
      text,
      '{"byEmail":{"[REDACTED:email]":1,"[REDACTED:email] #2":2,"[REDACTED:email] #3":3},"x":{"[REDACTED:email]":4}}',
    );
  });

  it('does not treat a value followed by whitespace and a colon in a string as a key', () => {
    const result = '{"a": ["alice@example.com" , "x: y"], "b": "bob@example.com"}';
    assert.equal(maskJsonText(result, ALL).text, '{"a": ["[REDACTED:email]" , "x: y"], "b": "[REDACTED:email]"}');
  });

  it('copies everything else byte for byte: numbers, formatting, escapes of other strings', () => {
    const result = '{\n  "big": 12345678901234567890123,\n  "f": 1.50e+10,\n  "esc": "caf\\u00e9 \\"q\\"",\n  "email": "alice@example.com",\n  "n": null, "t": true\n}';
    const { text } = maskJsonText(result, ALL);
    assert.equal(text, result.replace('alice@example.com', '[REDACTED:email]'));
  });

  it('finds PII written with JSON escapes and re-encodes the string safely', () => {
    const result = '{"a":"alice\\u0040example.com","b":"say \\"bob@example.com\\"\\n\\\\ end"}';
    const { text } = maskJsonText(result, ALL);
    assert.deepEqual(JSON.parse(text), { a: '[REDACTED:email]', b: 'say "[REDACTED:email]"\n\\ end' });
  });

  it('handles strings ending in escaped backslashes and quotes', () => {
    const result = JSON.stringify({ a: 'C:\\dir\\', b: 'quote"', c: 'alice@example.com', d: '\\"\\' });
    const { text } = maskJsonText(result, ALL);
    assert.deepEqual(JSON.parse(text), { a: 'C:\\dir\\', b: 'quote"', c: '[REDACTED:email]', d: '\\"\\' });
  });

  it('keeps non-ASCII and astral characters intact', () => {
    const result = JSON.stringify({ a: '日本語 🎉 alice@example.com 🎉', b: 'Ünïcödé' });
    assert.deepEqual(JSON.parse(maskJsonText(result, ALL).text), { a: '日本語 🎉 [REDACTED:email] 🎉', b: 'Ünïcödé' });
  });

  it('masks a top-level string or array too', () => {
    assert.equal(maskJsonText('"alice@example.com"', ALL).text, '"[REDACTED:email]"');
    assert.equal(maskJsonText('[ "4111111111111111", 4111111111111111 ]', ALL).text, '[ "[REDACTED:card]", 4111111111111111 ]');
  });

  it('reports no change and returns the same text when nothing matches', () => {
    const result = JSON.stringify({ content: [{ type: 'text', text: 'Build 1.2.3.4 on 2024-01-15, 12345 items' }] }, null, 2);
    const out = maskJsonText(result, ALL);
    assert.equal(out.changed, false);
    assert.equal(out.text, result);
    assert.deepEqual(out.counts, { email: 0, phone: 0, card: 0 });
  });

  it('survives deep nesting', () => {
    const depth = 5000;
    const result = `${'['.repeat(depth)}"alice@example.com"${']'.repeat(depth)}`;
    const { text } = maskJsonText(result, ALL);
    assert.equal(text, `${'['.repeat(depth)}"[REDACTED:email]"${']'.repeat(depth)}`);
  });

  it('rejects invalid JSON without quoting it', () => {
    for (const bad of ['', '   ', '{', '{"a": "alice@example.com"', "{'a': 1}", 'alice@example.com', '{"a":1}x', '"\u0001"']) {
      assert.throws(() => maskJsonText(bad, ALL), (e) => e instanceof InvalidJson && !e.message.includes('alice'));
    }
    assert.throws(() => maskJsonText(undefined, ALL), InvalidJson);
  });
});

describe('maskJsonText: the fast path agrees with the thorough one', () => {
  // A small deterministic generator of JSON texts mixing PII, look-alikes, escapes, numbers and
  // nesting; the candidate-driven fast path must give exactly what visiting every string gives.
  let seed = 12345;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const atoms = [
    'alice@example.com', 'a.b+tag@sub.example.co.uk', 'user@localhost', '+49 30 1234567', '(202) 555-0147',
    '202.555.0147', '4111 1111 1111 1111', '4111 1111 1111 1112', '378282246310005', '2024-01-15T10:30:00Z',
    '192.168.1.1', 'v10.0.19041', '1,234,567.89', '550e8400-e29b-41d4-a716-446655440000', 'plain words', 'x',
    '"quoted"', 'back\\slash\\', 'new\nline', 'tab\there', 'caf\u00e9', '\u2028', '🎉', '12345', ' ', ': ', ', ',
  ];
  const str = () => Array.from({ length: 1 + rand(4) }, () => atoms[rand(atoms.length)]).join(rand(2) ? ' ' : '');
  const value = (depth) => {
    const r = rand(depth > 3 ? 4 : 7);
    if (r === 0) return rand(1e6) * (rand(2) ? 1 : -1);
    if (r === 1) return 4111111111111111;
    if (r === 2 || r === 3) return str();
    if (r === 4) return [value(depth + 1), value(depth + 1), rand(2) ? null : true];
    const o = {};
    for (let i = 0; i < 1 + rand(3); i++) o[rand(6) ? `k${i}${rand(3) ? '' : ' 2024-01-15'}` : str()] = value(depth + 1);
    if (rand(4) === 0) o.text = JSON.stringify(value(depth + 1), null, rand(2) ? 2 : 0);
    return o;
  };
  // Writes some `@` and digits inside strings as \u escapes.
  const escapeAscii = (t) =>
    t.replace(/"(?:[^"\\]|\\.)*"/g, (token) =>
      token.replace(/[@0-9]/g, (c) => (rand(5) === 0 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)),
    );
  for (let i = 0; i < 300; i++) {
    const v = { content: [{ type: 'text', text: JSON.stringify(value(0)) }], structuredContent: value(0) };
    let text = JSON.stringify(v, null, rand(2) ? 1 : 0);
    if (i % 3 === 0) text = escapeAscii(text);
    it(`case ${i}`, () => {
      for (const kinds of [new Set(KINDS), new Set(['card']), new Set(['email', 'phone'])]) {
        const fast = maskJsonText(text, kinds);
        const thorough = maskEveryString(text, kinds);
        assert.deepEqual(fast, thorough);
        JSON.parse(fast.text);
      }
    });
  }
});
