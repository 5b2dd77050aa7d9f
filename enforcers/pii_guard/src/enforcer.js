// The pii_guard enforcer: WIT-shaped functions over plain values, with the host's logger passed
// in, so the tests can call exactly what the component exports. `component.js` only wires this
// to the `portcullis:policy/host` import and the `enforcer` export.
//
// Value shapes (as componentize-js maps the WIT types): enums are their lowercase names
// ('after', 'elicit', 'debug'); records are objects with camelCase fields; option<string> is a
// string or undefined; result<_, string> is {tag: 'ok'} | {tag: 'err', val}; a verdict is
// {tag: 'allow' | 'deny' | 'elicit' | 'replace', val}.

import { KINDS, maskJsonText, InvalidJson } from './pii.js';

export const NAME = 'pii_guard';
export const VERSION = '0.1.0';

const EXPECTED_PARAM = `expected only=KINDS, where KINDS is a comma-separated list of ${KINDS.join(', ')} (e.g. only=email,card)`;
const EXPECTED_KIND = `expected ${KINDS.slice(0, -1).join(', ')} or ${KINDS[KINDS.length - 1]}`;

/** Levenshtein distance, for did-you-mean hints on short words. */
function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function suggestKind(word) {
  const w = word.toLowerCase();
  let best = null;
  for (const k of KINDS) {
    if (w === k || w === `${k}s` || distance(w, k) <= 2) {
      best = k;
      break;
    }
  }
  return best;
}

/**
 * Parses a rule's parameters.
 *
 * @param {readonly string[]} params
 * @returns {{ok: true, kinds: Set<string>} | {ok: false, error: string}}
 */
export function parseParams(params) {
  let kinds = null;
  for (const param of params ?? []) {
    const eq = param.indexOf('=');
    const key = eq < 0 ? param : param.slice(0, eq);
    if (key.trim() !== 'only') {
      let hint = '';
      const kind = suggestKind(param.trim());
      if (kind) hint = ` (did you mean only=${kind}?)`;
      else if (distance(key.trim().toLowerCase(), 'only') <= 2) hint = ' (did you mean only=...?)';
      return { ok: false, error: `unknown parameter "${param}": ${EXPECTED_PARAM}${hint}` };
    }
    if (eq < 0) {
      return { ok: false, error: `parameter "only" needs a value: ${EXPECTED_PARAM}` };
    }
    if (kinds !== null) {
      return { ok: false, error: `parameter only= is given more than once: give it once, ${EXPECTED_PARAM}` };
    }
    const value = param.slice(eq + 1);
    const words = value.split(',').map((w) => w.trim());
    if (value.trim() === '') {
      return { ok: false, error: `only= needs at least one kind: ${EXPECTED_PARAM}` };
    }
    kinds = new Set();
    for (const w of words) {
      if (w === '') {
        return { ok: false, error: `empty kind in "only=${value}": ${EXPECTED_KIND}, separated by single commas` };
      }
      if (!KINDS.includes(w)) {
        const s = suggestKind(w);
        return {
          ok: false,
          error: `unknown kind "${w}" in "only=${value}": ${EXPECTED_KIND}${s ? ` (did you mean ${s}?)` : ''}`,
        };
      }
      kinds.add(w);
    }
  }
  return { ok: true, kinds: kinds ?? new Set(KINDS) };
}

const NOUNS = {
  email: ['email address', 'email addresses'],
  phone: ['phone number', 'phone numbers'],
  card: ['payment card number', 'payment card numbers'],
};

/** "2 email addresses, 1 phone number and 3 payment card numbers" */
export function describeCounts(counts) {
  const parts = [];
  for (const k of KINDS) {
    const n = counts[k];
    if (n > 0) parts.push(`${n} ${NOUNS[k][n === 1 ? 0 : 1]}`);
  }
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

/**
 * Builds the exported `enforcer` interface.
 *
 * @param {(level: 'debug' | 'info' | 'warn' | 'error', message: string) => void} log
 */
export function createEnforcer(log = () => {}) {
  const safeLog = (level, message) => {
    try {
      log(level, message);
    } catch {
      // Logging must never change a verdict.
    }
  };

  function metadata() {
    return {
      name: NAME,
      version: VERSION,
      description:
        'Masks email addresses, phone numbers and payment card numbers in tool results ' +
        '(after phase). Params: only=email,phone,card (default: all). ' +
        'Action elicit asks the user before showing the result unmasked.',
      phases: ['after'],
    };
  }

  function validate(caveat) {
    try {
      if (caveat.phase !== 'after') {
        return {
          tag: 'err',
          val: `${NAME} runs in the after phase only: it inspects the tool's result, which does not exist before the call (use "af:...", or phase: after)`,
        };
      }
      const parsed = parseParams(caveat.params);
      return parsed.ok ? { tag: 'ok' } : { tag: 'err', val: parsed.error };
    } catch (e) {
      return { tag: 'err', val: `${NAME}: internal error while validating: ${errorText(e)}` };
    }
  }

  function enforce(caveat, subject, request) {
    try {
      const parsed = parseParams(caveat.params);
      if (!parsed.ok) return deny(`invalid rule parameters: ${parsed.error}`);
      const result = request.result;
      if (result === undefined || result === null) {
        return deny(
          "the request carries no result to inspect (it runs in the after phase, on the tool's result)",
        );
      }
      let masked;
      try {
        masked = maskJsonText(result, parsed.kinds);
      } catch (e) {
        if (e instanceof InvalidJson) {
          return deny(
            `the tool result is ${e.message}, so it cannot be checked for personal data; withheld`,
          );
        }
        throw e;
      }
      if (!masked.changed) return { tag: 'allow', val: [] };
      const found = describeCounts(masked.counts);
      safeLog('debug', `masked ${found} in the result of ${request.tool}`);
      if (caveat.action === 'elicit') {
        return {
          tag: 'elicit',
          val: `The result of ${request.tool} contains ${found}. Show it unmasked?`,
        };
      }
      return { tag: 'replace', val: masked.text };
    } catch (e) {
      if (/out of memory/i.test(String(e?.message ?? e))) {
        const size = typeof request?.result === 'string' ? ` of ${request.result.length} characters` : '';
        return deny(
          `ran out of memory inspecting the tool result${size}; withheld (raise config.limits.memory_mib to allow larger results)`,
        );
      }
      return deny(`internal error while masking: ${errorText(e)}`);
    }
  }

  return { metadata, validate, enforce };
}

function deny(reason) {
  return { tag: 'deny', val: `${NAME}: ${reason}` };
}

/** An exception's name and message, truncated; never a quote of the input. */
function errorText(e) {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/**
 * Runs every code path once with a silent logger. The component calls this at the top level,
 * which componentize-js evaluates while snapshotting (Wizer): the functions' bytecode and the
 * compiled regular expressions then live in the snapshot, so the fresh instance the host makes
 * for each evaluation starts warm instead of compiling them on its first call.
 */
export function warmUp() {
  const e = createEnforcer();
  const sample = JSON.stringify({
    content: [
      {
        type: 'text',
        text: JSON.stringify({
          'key@example.com': 'alice@example.com',
          intl: '+49 30 1234567, +44 (0)20 7946 0958',
          us: '(202) 555-0147 / 202-555-0147',
          card: '4111 1111 1111 1111 and 378282246310005, not 4111 1111 1111 1112',
          other: 'caf\u00e9 v10.0.19041 192.168.1.1 2024-01-15T10:30:00Z',
        }),
      },
    ],
    structuredContent: { 'key@example.com': 1, 'dup@example.com': [2, 'a\\u0040example.com'] },
  });
  const caveat = { raw: '', phase: 'after', tool: '*', policy: NAME, action: 'deny', params: [] };
  const request = { tool: 'warm_up', arguments: '{}', result: sample, nowUnixMs: 0n, session: '' };
  e.metadata();
  e.validate(caveat);
  e.validate({ ...caveat, params: ['only=emails'] });
  e.enforce(caveat, {}, request);
  e.enforce({ ...caveat, action: 'elicit', params: ['only=email,phone,card'] }, {}, request);
  e.enforce(caveat, {}, { ...request, result: '{"a":' });
  e.enforce(caveat, {}, { ...request, result: '{"a":"nothing here"}' });
}
