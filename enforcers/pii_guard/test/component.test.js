// End-to-end tests of the built component, enforcers/dist/pii_guard.wasm: transpiled with jco
// into JS + core wasm and run in Node's V8, with a host `log` of our own. The same tables as the
// module tests, so any difference between Node and the engine inside the component
// (SpiderMonkey, with fewer regex features) shows up here.
//
// Skipped when the component has not been built (run ../build.sh first), unless
// PII_GUARD_REQUIRE_COMPONENT=1, which turns the skip into a failure (for CI).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { TRUE_POSITIVES, FALSE_POSITIVES, ONLY_CASES, VALIDATE_CASES, caveat, subject, request, RESULT } from './cases.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const WASM = resolve(process.env.PII_GUARD_WASM ?? join(HERE, '../../dist/pii_guard.wasm'));
const built = existsSync(WASM);
const skip = built || process.env.PII_GUARD_REQUIRE_COMPONENT === '1' ? false : `${WASM} not built (run enforcers/pii_guard/build.sh)`;

const wrap = (text) => JSON.stringify({ content: [{ type: 'text', text }], isError: false });

describe('component', { skip }, () => {
  let dir;
  let instantiate;
  const modules = new Map();
  let logs = [];
  const imports = { 'portcullis:policy/host': { log: (level, message) => logs.push([level, message]) } };
  let memory; // the main core module's linear memory, of the last instance

  async function fresh() {
    const getCoreModule = (name) => modules.get(name);
    const instantiateCore = async (module, imp) => {
      const instance = await WebAssembly.instantiate(module, imp);
      if (instance.exports.memory instanceof WebAssembly.Memory) memory = instance.exports.memory;
      return instance;
    };
    const exports = await instantiate(getCoreModule, imports, instantiateCore);
    return exports.enforcer;
  }

  let e; // one instance for the tables (the enforcer keeps no state between calls)

  before(async () => {
    const bytes = await readFile(WASM);
    const { componentWit, transpile } = await import('@bytecodealliance/jco');
    const wit = await componentWit(bytes);
    assert.match(wit, /^\s*import portcullis:policy\/host@0\.1\.0;$/m);
    assert.match(wit, /^\s*export portcullis:policy\/enforcer@0\.1\.0;$/m);
    assert.doesNotMatch(wit, /wasi:/);
    assert.equal([...wit.matchAll(/^\s*import /gm)].length, 1, wit);

    const { files } = await transpile(bytes, { name: 'pii_guard', instantiation: 'async', quiet: true });
    dir = await mkdtemp(join(tmpdir(), 'pii_guard-'));
    for (const [name, data] of Object.entries(files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), data);
      if (name.endsWith('.wasm')) modules.set(name, await WebAssembly.compile(data));
    }
    ({ instantiate } = await import(pathToFileURL(join(dir, 'pii_guard.js')).href));
    e = await fresh();
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('metadata', () => {
    assert.deepEqual(e.metadata(), {
      name: 'pii_guard',
      version: '0.1.0',
      description: e.metadata().description,
      phases: ['after'],
    });
  });

  describe('validate', () => {
    for (const [params, expected] of VALIDATE_CASES) {
      it(JSON.stringify(params), () => {
        // jco maps result<_, string> to a return for ok and a thrown ComponentError for err.
        let err = null;
        try {
          e.validate(caveat({ params }));
        } catch (x) {
          err = x.payload ?? x;
        }
        if (expected === 'ok') assert.equal(err, null);
        else for (const part of expected) assert.ok(String(err).includes(part), `${err} should include ${part}`);
      });
    }
  });

  describe('true positives are masked', () => {
    for (const [input, expected, note] of TRUE_POSITIVES) {
      it(`${note}: ${input}`, () => {
        const v = e.enforce(caveat(), subject, request(wrap(input)));
        assert.equal(v.tag, 'replace');
        assert.equal(JSON.parse(v.val).content[0].text, expected);
      });
    }
  });

  describe('false positives survive', () => {
    for (const [input, note] of FALSE_POSITIVES) {
      it(`${note}: ${input}`, () => {
        assert.deepEqual(e.enforce(caveat(), subject, request(wrap(input))), { tag: 'allow', val: [] });
      });
    }
  });

  describe('only=', () => {
    for (const [only, input, expected] of ONLY_CASES) {
      it(`only=${only}`, () => {
        const v = e.enforce(caveat({ params: [`only=${only}`] }), subject, request(wrap(input)));
        assert.equal(JSON.parse(v.val).content[0].text, expected);
      });
    }
  });

  it('enforce returns replace with masked content and logs counts only', async () => {
    const fe = await fresh(); // a fresh instance, as the host makes one per evaluation
    logs = [];
    const v = fe.enforce(caveat(), subject, request(RESULT));
    assert.equal(v.tag, 'replace');
    const out = JSON.parse(v.val);
    assert.equal(JSON.parse(out.content[0].text).email, '[REDACTED:email]');
    assert.equal(out.structuredContent.card, '[REDACTED:card]');
    assert.equal(out.structuredContent.since, '2024-01-15');
    assert.deepEqual(logs, [['debug', 'masked 3 email addresses, 2 phone numbers and 1 payment card number in the result of get_user']]);
  });

  it('elicit', () => {
    const v = e.enforce(caveat({ action: 'elicit' }), subject, request(RESULT));
    assert.equal(v.tag, 'elicit');
    assert.match(v.val, /^The result of get_user contains 3 email addresses, .* Show it unmasked\?$/);
  });

  it('missing or invalid result -> deny', () => {
    assert.equal(e.enforce(caveat(), subject, request(undefined)).tag, 'deny');
    const v = e.enforce(caveat(), subject, request('{"a": "alice@example.com"'));
    assert.equal(v.tag, 'deny');
    assert.match(v.val, /^pii_guard: the tool result is not valid JSON/);
  });

  it('JSON escapes, keys, big numbers and deep nesting', () => {
    const r = '{"k":{"alice@example.com":1,"bob@example.com":2},"n":12345678901234567890123,"e":"a\\u0040example.com"}';
    assert.equal(
      e.enforce(caveat(), subject, request(r)).val,
      '{"k":{"[REDACTED:email]":1,"[REDACTED:email] #2":2},"n":12345678901234567890123,"e":"[REDACTED:email]"}',
    );
    const deep = `${'['.repeat(5000)}"alice@example.com"${']'.repeat(5000)}`;
    assert.equal(e.enforce(caveat(), subject, request(deep)).val, `${'['.repeat(5000)}"[REDACTED:email]"${']'.repeat(5000)}`);
  });

  it('cost: instantiation, one call, large results, memory', async (t) => {
    const t0 = performance.now();
    const fe = await fresh();
    const tInst = performance.now() - t0;
    const pagesStart = memory.buffer.byteLength / 65536;

    const time = (result, n) => {
      let v;
      const s = performance.now();
      for (let i = 0; i < n; i++) v = fe.enforce(caveat(), subject, request(result));
      return [(performance.now() - s) / n, v];
    };
    time(RESULT, 1); // first call
    const [small] = time(RESULT, 20);

    const rows = Array.from({ length: 1000 }, (_, i) => ({
      id: i,
      name: `User ${i}`,
      email: `user${i}@example.com`,
      phone: '+1-202-555-0147',
      note: 'Build v10.0.19041 shipped 2024-01-15T10:30:00Z to 192.168.1.1; invoice 4111 1111 1111 1112',
    }));
    const big = JSON.stringify({ content: [{ type: 'text', text: JSON.stringify(rows) }], structuredContent: { rows } });
    const [bigMs, bigV] = time(big, 3);
    assert.equal(bigV.tag, 'replace');
    const clean = JSON.stringify({ content: [{ type: 'text', text: 'x'.repeat(1 << 20) }] });
    const [cleanMs] = time(clean, 3);
    const pagesEnd = memory.buffer.byteLength / 65536;

    t.diagnostic(`instantiate ${tInst.toFixed(0)} ms (V8; core modules precompiled)`);
    t.diagnostic(`enforce on a ${RESULT.length} B result: ${small.toFixed(2)} ms`);
    t.diagnostic(`enforce on a ${(big.length / 1024).toFixed(0)} KiB result with 4000 matches: ${bigMs.toFixed(1)} ms`);
    t.diagnostic(`enforce on a 1 MiB result with one clean string: ${cleanMs.toFixed(1)} ms`);
    t.diagnostic(`linear memory: ${pagesStart} pages (${(pagesStart / 16).toFixed(1)} MiB) at start, ${pagesEnd} pages (${(pagesEnd / 16).toFixed(1)} MiB) after`);
  });
});
