// PII detection and masking: plain ES module, no imports, no host calls, so the same code runs
// in Node's test runner and inside the component (SpiderMonkey via componentize-js).
//
// Two layers:
//   maskText(string, kinds)      masks email addresses, phone numbers and card numbers in one string
//   maskJsonText(json, kinds)    masks every string (values and object keys) of a JSON text,
//                                copying everything else byte for byte

/** The kinds of personal data pii_guard knows, in the order they are masked. */
export const KINDS = Object.freeze(['email', 'phone', 'card']);

/** The mask for one kind: no quotes, backslashes or control characters, so JSON stays valid. */
export const mask = (kind) => `[REDACTED:${kind}]`;

const zero = () => ({ email: 0, phone: 0, card: 0 });

// Performance note. Inside the component this code runs in SpiderMonkey's interpreter (no JIT),
// and String.prototype.replace/match/split with a regex are themselves interpreted JavaScript.
// So detection avoids scanning text with complex patterns: emails are found from each `@`,
// international phone numbers from each `+`, both with sticky patterns; digit patterns are
// first located with a simple character-class scan. Matches are spliced with exec loops.

// The engine inside the component (StarlingMonkey) has no Unicode property tables, so `\p{L}`
// is unavailable: letters are ASCII plus the BMP letter blocks, spelled as ranges.
const L =
  'A-Za-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u1FFF\\u2C00-\\u2DFF\\u2E80-\\u2FFF\\u3040-\\uD7FF' +
  '\\uF900-\\uFDFF\\uFE70-\\uFEFF\\uFF21-\\uFF3A\\uFF41-\\uFF5A\\uFF66-\\uFFDC';
const W = `0-9${L}`; // letters and digits

/** Replaces the regions [from, to) listed in `regions` (in order) with `text`. */
function splice(s, regions, text) {
  let out = '';
  let copied = 0;
  for (let i = 0; i < regions.length; i += 2) {
    out += s.slice(copied, regions[i]) + text;
    copied = regions[i + 1];
  }
  return out + s.slice(copied);
}

// ---------------------------------------------------------------------------------------------
// Email addresses
//
// local@domain where the domain has at least one dot and ends in a letters-only top-level
// label (2-63 letters); the local part is up to 64 of letters, digits and `._%+-`, and does not
// start or end with a dot. Letters are ASCII and the BMP's letter blocks. Not masked, by
// decision:
//   - dotless domains (`root@localhost`, `user@host`): local accounts, not mailboxes on the
//     internet, and the shape of ssh targets and `name@version` strings;
//   - the `name@2x.png` image-asset convention.
//
// Matched from each `@`: the local part is captured by a lookbehind.

const LOCAL_EDGE = `${W}_%+\\-`; // may start or end a local part
const EMAIL_AT = new RegExp(
  `(?<=(?<![${LOCAL_EDGE}])([${LOCAL_EDGE}](?:[${LOCAL_EDGE}.]{0,62}[${LOCAL_EDGE}])?))` +
    `@(?:[${W}](?:[${W}\\-]{0,61}[${W}])?\\.)+[${L}]{2,63}(?![${W}@_\\-]|\\.[${W}])`,
  'y',
);
const ASSET_NAME = /^@\d+(?:\.\d+)?x\.(?:png|jpe?g|gif|webp|svg|avif|bmp|ico)$/i;

function maskEmails(s, counts) {
  const regions = [];
  let at = -1;
  while ((at = s.indexOf('@', at + 1)) !== -1) {
    EMAIL_AT.lastIndex = at;
    const m = EMAIL_AT.exec(s);
    if (m === null || ASSET_NAME.test(m[0])) continue;
    regions.push(at - m[1].length, at + m[0].length);
    at += m[0].length - 1;
  }
  if (regions.length === 0) return s;
  counts.email += regions.length / 2;
  return splice(s, regions, mask('email'));
}

// ---------------------------------------------------------------------------------------------
// Phone numbers
//
// International: `+` country code, then digit groups separated by one space, dot or dash, with
// an optional parenthesised group: `+49 30 1234567`, `+1-202-555-0147`, `+44 (0)20 7946 0958`,
// `+4930123456`. 8 to 15 digits in all (E.164 allows at most 15). Matched from each `+`.
//
// North American: `(202) 555-0147`, `202-555-0147`, `202.555.0147`, optionally with a leading
// `1-`. Area code and exchange start with 2-9, as real ones do, which keeps `123-456-7890`-like
// part numbers out. Three space-separated groups (`202 555 0147`) are deliberately not matched:
// too many tables of plain numbers look like that.
//
// Groups are separated by mandatory non-digits, so there is a single way to split a run of
// digits and the patterns cannot backtrack badly.

const PHONE_INTL = new RegExp(
  `(?<![${W}_+])\\+[1-9]\\d{0,14}(?:[ .\\-]?\\(\\d{1,4}\\)[ .\\-]?\\d{1,10}|[ .\\-]\\d{1,10}){0,6}(?![${W}_]|[.\\-]\\d)`,
  'y',
);
const NANP_HINT = /\d{3}[.-]\d{3}[.-]\d{4}|\(\d{3}\)/;
const PHONE_NANP = new RegExp(
  `(?<![${W}_+.\\-])(?:1[ .\\-])?(?:\\([2-9]\\d{2}\\) ?|[2-9]\\d{2}[.\\-])[2-9]\\d{2}[.\\-]\\d{4}(?![${W}_]|[.\\-]\\d)`,
  'g',
);

function maskPhones(s, counts) {
  let regions = [];
  let at = -1;
  while ((at = s.indexOf('+', at + 1)) !== -1) {
    PHONE_INTL.lastIndex = at;
    const m = PHONE_INTL.exec(s);
    if (m === null) continue;
    let digits = 0;
    for (let k = 0; k < m[0].length; k++) {
      const c = m[0].charCodeAt(k);
      if (c >= 48 && c <= 57) digits++;
    }
    if (digits < 8 || digits > 15) continue;
    regions.push(at, at + m[0].length);
    at += m[0].length - 1;
  }
  if (regions.length) {
    counts.phone += regions.length / 2;
    s = splice(s, regions, mask('phone'));
    regions = [];
  }
  if (!NANP_HINT.test(s)) return s;
  PHONE_NANP.lastIndex = 0;
  let m;
  while ((m = PHONE_NANP.exec(s)) !== null) regions.push(m.index, m.index + m[0].length);
  if (regions.length === 0) return s;
  counts.phone += regions.length / 2;
  return splice(s, regions, mask('phone'));
}

// ---------------------------------------------------------------------------------------------
// Payment card numbers
//
// A run of digit groups separated by single spaces or dashes is found first; then windows of
// whole groups are tried, longest first, so that a card followed or preceded by other numbers
// (`Ref 2024 4111 1111 1111 1111`) is still found. A window is a card when it has 13-19
// digits, is written like one (one group of 13-19 digits, or a first group of 4 digits and
// further groups of 2-6 digits, all with the same separator), starts with a major industry
// identifier of a card network (2-6: Mir/Mastercard 2, Amex/Diners/JCB 3, Visa 4,
// Mastercard/Maestro 5, Discover/UnionPay/Maestro 6), and passes the Luhn check. The
// identifier check keeps 13-digit millisecond timestamps (`1705314600000`) and similar IDs
// out; one random digit string in ten passes Luhn. A run inside a word, a decimal or a longer
// number (`ab4111...`, `4111....5`) is not a card.

// Stretches of digits, spaces and dashes, 13 characters or more, from a digit to a digit: a
// cheap scan. The runs inside them (single separators) are then looked at one by one.
const CARD_STRETCH = /\d[\d -]{11,}\d/g;
const RUN = /\d+(?:[ -]\d+)*/g;
const WORD_CHAR = new RegExp(`[${W}_]`);

/** Whether a run at s[from, to) stands alone, not inside a word, decimal or longer number. */
function standsAlone(s, from, to) {
  const before = s[from - 1];
  if (before !== undefined && (before === '.' || before === ',' || before === '-' || WORD_CHAR.test(before))) {
    return false;
  }
  const after = s[to];
  if (after === undefined) return true;
  if (WORD_CHAR.test(after)) return false;
  return !((after === '.' || after === ',') && /\d/.test(s[to + 1] ?? ''));
}

/** The Luhn (mod 10) check over a string of ASCII digits. */
export function luhn(digits) {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const CARD_MASK = mask('card');

/**
 * Masks the card numbers inside one run of digit groups (single space or dash separators);
 * returns [text, count]. Plain loops rather than regex split/replace, which the engine in the
 * component runs as interpreted JavaScript.
 */
function maskCardRun(run) {
  // The groups: start offsets, and the separator code after each.
  const starts = [0];
  const seps = [];
  for (let k = 0; k < run.length; k++) {
    const c = run.charCodeAt(k);
    if (c === 32 || c === 45) {
      seps.push(c);
      starts.push(k + 1);
    }
  }
  const n = starts.length;
  const groupEnd = (g) => (g + 1 < n ? starts[g + 1] - 1 : run.length);
  let out = '';
  let copied = 0;
  let count = 0;
  for (let i = 0; i < n; ) {
    const end = cardEndingAt(run, starts, seps, groupEnd, i);
    if (end < 0) {
      i++;
      continue;
    }
    out += run.slice(copied, starts[i]) + CARD_MASK;
    copied = groupEnd(end);
    count++;
    i = end + 1;
  }
  return count ? [out + run.slice(copied), count] : [run, 0];
}

/** The index of the last group of the longest card number that starts at group `i`, or -1. */
function cardEndingAt(run, starts, seps, groupEnd, i) {
  const mii = run.charCodeAt(starts[i]);
  if (mii < 50 || mii > 54) return -1; // not '2'..'6'
  const firstLength = groupEnd(i) - starts[i];
  if (firstLength >= 13) {
    return firstLength <= 19 && luhn(run.slice(starts[i], groupEnd(i))) ? i : -1;
  }
  if (firstLength !== 4) return -1;
  // Four digits, then groups of 2-6 digits, all with the same separator.
  let digits = run.slice(starts[i], groupEnd(i));
  let best = -1;
  for (let j = i + 1; j < starts.length; j++) {
    const length = groupEnd(j) - starts[j];
    if (length < 2 || length > 6 || seps[j - 1] !== seps[i]) break;
    if (digits.length + length > 19) break;
    digits += run.slice(starts[j], groupEnd(j));
    if (digits.length >= 13 && luhn(digits)) best = j;
  }
  return best;
}

function maskCards(s, counts) {
  let out = '';
  let copied = 0;
  CARD_STRETCH.lastIndex = 0;
  let m;
  while ((m = CARD_STRETCH.exec(s)) !== null) {
    const stretch = m[0];
    RUN.lastIndex = 0;
    let r;
    while ((r = RUN.exec(stretch)) !== null) {
      const run = r[0];
      if (run.length < 13) continue;
      const from = m.index + r.index;
      const to = from + run.length;
      if (!standsAlone(s, from, to)) continue;
      const [masked, n] = maskCardRun(run);
      if (n === 0) continue;
      out += s.slice(copied, from) + masked;
      copied = to;
      counts.card += n;
    }
  }
  return copied === 0 ? s : out + s.slice(copied);
}

// ---------------------------------------------------------------------------------------------

/**
 * Masks the personal data of the given kinds in one string.
 *
 * @param {string} s
 * @param {ReadonlySet<string>} kinds a subset of KINDS
 * @param {{email: number, phone: number, card: number}} [counts] incremented per match
 * @returns {string} the masked string (the same string when nothing matched)
 */
export function maskText(s, kinds, counts = zero()) {
  // Emails first (they may contain digits), then cards (a long digit run must not lose a
  // piece to the phone patterns), then phones. Masks contain no digits, `@` or `+`, so a later
  // pattern never matches inside an earlier mask.
  if (kinds.has('email') && s.indexOf('@') !== -1) s = maskEmails(s, counts);
  if (kinds.has('card')) s = maskCards(s, counts);
  if (kinds.has('phone')) s = maskPhones(s, counts);
  return s;
}

// ---------------------------------------------------------------------------------------------
// JSON

/** The JSON text is not valid JSON. The message never quotes the text (it may hold PII). */
export class InvalidJson extends Error {
  constructor(detail) {
    super(`not valid JSON${detail ? ` (${detail})` : ''}`);
    this.name = 'InvalidJson';
  }
}

const STRUCTURE = /["{}[\]]/g;
const COLON_NEXT = /[ \t\n\r]*:/y;

/**
 * Masks personal data in every string of a JSON text: string values at any depth and object
 * keys. Everything else (numbers, formatting, key order, escapes of unchanged strings) is
 * copied unchanged, so large integers keep every digit and a pretty-printed result stays
 * pretty-printed. A string that may itself be JSON text (an MCP text content item) is masked
 * in place: masks contain no quotes or backslashes, so embedded JSON stays valid.
 *
 * Masked keys that would collide with another key of the same object get a suffix
 * (`[REDACTED:email] #2`), so no member is lost.
 *
 * Numbers are not strings and are not inspected.
 *
 * @param {string} text a JSON text
 * @param {ReadonlySet<string>} kinds a subset of KINDS
 * @returns {{text: string, counts: {email: number, phone: number, card: number}, changed: boolean}}
 * @throws {InvalidJson} when `text` is not valid JSON
 */
export function maskJsonText(text, kinds) {
  validateJson(text);
  return maskCandidates(text, kinds) ?? maskEveryString(text, kinds);
}

/** Throws InvalidJson unless `text` is a JSON text. The scans below rely on its validity. */
function validateJson(text) {
  if (typeof text !== 'string') throw new InvalidJson('not a string');
  try {
    JSON.parse(text);
  } catch {
    throw new InvalidJson(text.trim() === '' ? 'empty' : '');
  }
}

// The fast path. The engine in the component interprets JavaScript (no JIT), so a loop over
// every string of a large result costs milliseconds; built-in string and regex functions run
// natively. So: find the places that could hold PII with one regex over the raw text, and
// decode and mask only the strings around them.
//
// A candidate is a superset of every match, with no boundary conditions, as raw text and
// decoded string differ around escapes: an `@`, a `+` before a digit, `(ddd)`, a stretch of
// 12+ digits, spaces, dots and dashes from a digit to a digit (13+ without dots for cards
// alone), or a `\u` escape of a printable ASCII character (which may spell any of those).
const CANDIDATE_PARTS = {
  email: ['@'],
  phone: ['\\+\\d', '\\(\\d{3}\\)', '\\d[\\d .-]{10,}\\d'],
  card: ['\\d[\\d -]{11,}\\d'],
};
const ASCII_ESCAPE = '\\\\u00[2-7][0-9A-Fa-f]';
const candidateRegexes = new Map();
function candidateRegex(kinds) {
  const key = KINDS.filter((k) => kinds.has(k)).join();
  let re = candidateRegexes.get(key);
  if (!re) {
    const parts = [ASCII_ESCAPE];
    if (kinds.has('email')) parts.push(...CANDIDATE_PARTS.email);
    if (kinds.has('phone')) parts.push(...CANDIDATE_PARTS.phone); // its digit stretch covers cards'
    else if (kinds.has('card')) parts.push(...CANDIDATE_PARTS.card);
    re = new RegExp(parts.join('|'), 'g');
    candidateRegexes.set(key, re);
  }
  return re;
}

/**
 * Masks the strings that contain a candidate. Returns null when a masked string is an object
 * key (the caller then takes the thorough path, which keeps keys unique).
 */
function maskCandidates(text, kinds) {
  // Same-length stand-ins for escaped backslashes and escaped quotes (control characters never
  // appear raw in valid JSON), so that in `plain` every `"` delimits a string and offsets match.
  const plain = text.replaceAll('\\\\', '\u0001\u0001').replaceAll('\\"', '\u0002\u0002');
  const re = candidateRegex(kinds);
  re.lastIndex = 0;
  const counts = zero();
  const pieces = [];
  let copied = 0;
  let scanned = 0; // quotes before this offset have been counted
  let inside = false; // whether `scanned` is inside a string
  let m;
  while ((m = re.exec(plain)) !== null) {
    const at = m.index;
    for (let q = plain.indexOf('"', scanned); q !== -1 && q < at; q = plain.indexOf('"', q + 1)) inside = !inside;
    scanned = at;
    if (!inside) continue; // a number literal
    const start = plain.lastIndexOf('"', at);
    const end = plain.indexOf('"', at);
    const raw = text.slice(start + 1, end);
    const value = raw.includes('\\') ? JSON.parse(text.slice(start, end + 1)) : raw;
    const masked = maskText(value, kinds, counts);
    if (masked !== value) {
      COLON_NEXT.lastIndex = end + 1;
      if (COLON_NEXT.test(text)) return null; // a key
      pieces.push(text.slice(copied, start), JSON.stringify(masked));
      copied = end + 1;
    }
    // Continue after this string.
    re.lastIndex = end + 1;
    scanned = end + 1;
    inside = false;
  }
  if (copied === 0) return { text, counts, changed: false };
  pieces.push(text.slice(copied));
  return { text: pieces.join(''), counts, changed: true };
}

/**
 * The thorough path: visits every string, tracking objects so that masked keys stay unique.
 * Exported for tests, which check that both paths agree.
 */
export function maskEveryString(text, kinds) {
  const counts = zero();
  const pieces = [];
  let copied = 0;
  // One entry per open container: a Set of the (output) keys for an object, null for an array.
  const stack = [];
  STRUCTURE.lastIndex = 0;
  let m;
  while ((m = STRUCTURE.exec(text)) !== null) {
    const c = m[0];
    if (c === '{') {
      stack.push(new Set());
      continue;
    }
    if (c === '[') {
      stack.push(null);
      continue;
    }
    if (c === '}' || c === ']') {
      stack.pop();
      continue;
    }
    // A string token from m.index to its closing quote (the first quote not escaped).
    const start = m.index;
    let end = start;
    for (;;) {
      end = text.indexOf('"', end + 1);
      let backslashes = 0;
      while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++;
      if (backslashes % 2 === 0) break;
    }
    STRUCTURE.lastIndex = end + 1;
    const raw = text.slice(start + 1, end);
    const value = raw.includes('\\') ? JSON.parse(text.slice(start, end + 1)) : raw;
    const masked = maskText(value, kinds, counts);
    const top = stack.length ? stack[stack.length - 1] : null;
    COLON_NEXT.lastIndex = end + 1;
    const isKey = top !== null && COLON_NEXT.test(text);
    let out = masked;
    if (isKey) {
      if (masked !== value && top.has(masked)) {
        let n = 2;
        while (top.has(`${masked} #${n}`)) n++;
        out = `${masked} #${n}`;
      }
      top.add(out);
    }
    if (out !== value) {
      pieces.push(text.slice(copied, start), JSON.stringify(out));
      copied = end + 1;
    }
  }
  if (copied === 0) return { text, counts, changed: false };
  pieces.push(text.slice(copied));
  return { text: pieces.join(''), counts, changed: true };
}
