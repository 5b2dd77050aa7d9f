import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { createEnforcer, describeCounts, parseParams } from '../src/enforcer.js';
import { VALIDATE_CASES, caveat, subject, request, RESULT } from './cases.js';

function withLog() {
  const logs = [];
  return { logs, enforcer: createEnforcer((level, message) => logs.push([level, message])) };
}

describe('metadata', () => {
  it('names the enforcer and its phase', () => {
    const m = createEnforcer().metadata();
    assert.equal(m.name, 'pii_guard');
    assert.match(m.version, /^\d+\.\d+\.\d+$/);
    assert.ok(m.description.length > 0);
    assert.deepEqual(m.phases, ['after']);
  });
});

describe('validate', () => {
  const { validate } = createEnforcer();
  for (const [params, expected] of VALIDATE_CASES) {
    it(`${JSON.stringify(params)} -> ${expected === 'ok' ? 'ok' : 'err'}`, () => {
      const r = validate(caveat({ params }));
      if (expected === 'ok') {
        assert.deepEqual(r, { tag: 'ok' });
      } else {
        assert.equal(r.tag, 'err');
        for (const part of expected) assert.ok(r.val.includes(part), `${JSON.stringify(r.val)} should include ${JSON.stringify(part)}`);
      }
    });
  }
  it('rejects a before-phase rule', () => {
    const r = validate(caveat({ phase: 'before' }));
    assert.equal(r.tag, 'err');
    assert.match(r.val, /after phase only/);
  });
  it('accepts every action', () => {
    for (const action of ['allow', 'deny', 'elicit']) assert.deepEqual(validate(caveat({ action })), { tag: 'ok' });
  });
  it('does not throw on a malformed caveat', () => {
    assert.equal(validate(undefined).tag, 'err');
  });
});

describe('enforce', () => {
  it('replaces the result with a masked CallToolResult', () => {
    const { enforcer, logs } = withLog();
    const v = enforcer.enforce(caveat(), subject, request(RESULT));
    assert.equal(v.tag, 'replace');
    const out = JSON.parse(v.val);
    assert.deepEqual(JSON.parse(out.content[0].text), {
      name: 'Alice',
      email: '[REDACTED:email]',
      phone: '[REDACTED:phone]',
      since: '2024-01-15',
    });
    assert.deepEqual(out.structuredContent, {
      name: 'Alice',
      email: '[REDACTED:email]',
      phone: '[REDACTED:phone]',
      backup: '[REDACTED:email]',
      card: '[REDACTED:card]',
      since: '2024-01-15',
    });
    assert.equal(out.isError, false);
    // One debug line with counts, never the data itself.
    assert.deepEqual(logs, [['debug', 'masked 3 email addresses, 2 phone numbers and 1 payment card number in the result of get_user']]);
  });

  it('replaces for an allow rule too (masking is not a denial)', () => {
    assert.equal(createEnforcer().enforce(caveat({ action: 'allow' }), subject, request(RESULT)).tag, 'replace');
  });

  it('allows with no caveats, and logs nothing, when there is nothing to mask', () => {
    const { enforcer, logs } = withLog();
    const clean = JSON.stringify({ content: [{ type: 'text', text: 'v10.0.19041 at 192.168.1.1 on 2024-01-15T10:30:00Z' }], isError: false });
    assert.deepEqual(enforcer.enforce(caveat(), subject, request(clean)), { tag: 'allow', val: [] });
    assert.deepEqual(logs, []);
  });

  it('asks the user instead when the rule says elicit', () => {
    const v = createEnforcer().enforce(caveat({ action: 'elicit' }), subject, request(RESULT, 'get_user_profile'));
    assert.deepEqual(v, {
      tag: 'elicit',
      val: 'The result of get_user_profile contains 3 email addresses, 2 phone numbers and 1 payment card number. Show it unmasked?',
    });
  });

  it('allows an elicit rule when there is nothing to mask', () => {
    const v = createEnforcer().enforce(caveat({ action: 'elicit' }), subject, request('{"content":[]}'));
    assert.deepEqual(v, { tag: 'allow', val: [] });
  });

  it('honours only=', () => {
    const v = createEnforcer().enforce(caveat({ params: ['only=card'] }), subject, request(RESULT));
    assert.equal(v.tag, 'replace');
    const out = JSON.parse(v.val).structuredContent;
    assert.equal(out.email, 'alice@example.com');
    assert.equal(out.phone, '+1-202-555-0147');
    assert.equal(out.card, '[REDACTED:card]');
  });

  it('elicit counts only the selected kinds', () => {
    const v = createEnforcer().enforce(caveat({ action: 'elicit', params: ['only=email'] }), subject, request(RESULT));
    assert.equal(v.val, 'The result of get_user contains 3 email addresses. Show it unmasked?');
  });

  it('denies (fails closed) when the result is missing', () => {
    for (const result of [undefined, null]) {
      const v = createEnforcer().enforce(caveat(), subject, request(result));
      assert.equal(v.tag, 'deny');
      assert.match(v.val, /^pii_guard: .*no result/);
    }
  });

  it('denies when the result is not valid JSON, without quoting it', () => {
    for (const bad of ['', 'alice@example.com', '{"content": [', '{"a":"alice@example.com"} trailing']) {
      const v = createEnforcer().enforce(caveat(), subject, request(bad));
      assert.equal(v.tag, 'deny');
      assert.match(v.val, /^pii_guard: the tool result is not valid JSON/);
      assert.ok(!v.val.includes('alice'), v.val);
    }
  });

  it('denies on parameters that would not validate', () => {
    const v = createEnforcer().enforce(caveat({ params: ['only=ssn'] }), subject, request(RESULT));
    assert.equal(v.tag, 'deny');
    assert.match(v.val, /^pii_guard: invalid rule parameters: unknown kind "ssn"/);
  });

  it('never throws: garbage arguments become a deny', () => {
    const { enforce } = createEnforcer();
    for (const args of [[], [null, null, null], [caveat(), subject, null], [{ params: 7 }, subject, request(RESULT)]]) {
      const v = enforce(...args);
      assert.equal(v.tag, 'deny', JSON.stringify(args, (_, x) => (typeof x === 'bigint' ? String(x) : x)));
      assert.match(v.val, /^pii_guard: /);
    }
  });

  it('a throwing host log does not change the verdict', () => {
    const enforcer = createEnforcer(() => {
      throw new Error('host gone');
    });
    assert.equal(enforcer.enforce(caveat(), subject, request(RESULT)).tag, 'replace');
  });

  it('keeps isError results, and masks them too', () => {
    const r = JSON.stringify({ content: [{ type: 'text', text: 'no user alice@example.com' }], isError: true });
    const v = createEnforcer().enforce(caveat(), subject, request(r));
    assert.deepEqual(JSON.parse(v.val), { content: [{ type: 'text', text: 'no user [REDACTED:email]' }], isError: true });
  });
});

describe('helpers', () => {
  it('describeCounts', () => {
    assert.equal(describeCounts({ email: 1, phone: 0, card: 0 }), '1 email address');
    assert.equal(describeCounts({ email: 2, phone: 1, card: 0 }), '2 email addresses and 1 phone number');
    assert.equal(describeCounts({ email: 0, phone: 2, card: 3 }), '2 phone numbers and 3 payment card numbers');
  });
  it('parseParams defaults to every kind', () => {
    assert.deepEqual([...parseParams([]).kinds], ['email', 'phone', 'card']);
  });
});

describe('warmUp', () => {
  it('runs without throwing', async () => {
    const { warmUp } = await import('../src/enforcer.js');
    warmUp();
  });
});

describe('out of memory', () => {
  it('becomes a deny that names the limit to raise', () => {
    // The engine's OOM surfaces as an exception; raise one from inside enforce.
    const params = {
      [Symbol.iterator]() {
        throw new Error('out of memory');
      },
    };
    const v = createEnforcer().enforce(caveat({ params }), subject, request(RESULT));
    assert.equal(v.tag, 'deny');
    assert.match(v.val, /^pii_guard: ran out of memory inspecting the tool result of \d+ characters; .*memory_mib/);
  });
});
