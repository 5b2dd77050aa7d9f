// Test tables shared by the module tests (pii.test.js, enforcer.test.js) and the component
// tests (component.test.js), so the built component is held to exactly the same cases.

const E = '[REDACTED:email]';
const P = '[REDACTED:phone]';
const C = '[REDACTED:card]';

/** [input, expected output with all kinds enabled, note] — PII that must be masked. */
export const TRUE_POSITIVES = [
  // email
  ['alice@example.com', E, 'plain email'],
  ['a.b+tag@sub.example.co.uk', E, 'dots, plus tag, multi-label domain'],
  ['Contact: alice@example.com.', `Contact: ${E}.`, 'sentence-final period is kept'],
  ['<alice@example.com>', `<${E}>`, 'angle brackets'],
  ['mailto:alice@example.com', `mailto:${E}`, 'mailto: prefix is kept'],
  ['ALICE_O-NEIL%x@Mail-Server.Example.ORG', E, 'upper case, _ - % in the local part'],
  ['jürgen@müller.de', E, 'non-ASCII letters'],
  ['x@y.io', E, 'one-letter local part and label'],
  ['a@example.com,b@example.org;c@example.net', `${E},${E};${E}`, 'a list'],
  ['see: .alice@example.com', `see: .${E}`, 'a dot before the local part is not part of it'],
  ['"alice@example.com"', `"${E}"`, 'quoted (inside a string, as in JSON text)'],
  ['x'.repeat(64) + '@example.com', E, '64-character local part'],
  // phone
  ['+49 30 1234567', P, 'international, spaces'],
  ['+1-202-555-0147', P, 'international, dashes'],
  ['+44 (0)20 7946 0958', P, 'international with (0)'],
  ['+33.1.23.45.67.89', P, 'international, dots'],
  ['+4930123456', P, 'international, no separators'],
  ['(202) 555-0147', P, 'US with area code in parentheses'],
  ['(202)555-0147', P, 'US, no space after parentheses'],
  ['202-555-0147', P, 'US, dashes'],
  ['202.555.0147', P, 'US, dots'],
  ['1-202-555-0147', P, 'US with leading 1-'],
  ['Call 202-555-0147.', `Call ${P}.`, 'in a sentence'],
  ['tel:+1 202 555 0147 ext 5', `tel:${P} ext 5`, 'tel: URI'],
  // card
  ['4111 1111 1111 1111', C, 'Visa, spaces'],
  ['4111-1111-1111-1111', C, 'Visa, dashes'],
  ['4111111111111111', C, 'Visa, no separators'],
  ['378282246310005', C, 'Amex, 15 digits'],
  ['3782 822463 10005', C, 'Amex, 4-6-5 grouping'],
  ['5555 5555 5555 4444', C, 'Mastercard'],
  ['2223003122003222', C, 'Mastercard 2-series'],
  ['6011 1111 1111 1117', C, 'Discover'],
  ['4222222222222', C, '13-digit Visa'],
  ['Card: 4111 1111 1111 1111, exp 12/27', `Card: ${C}, exp 12/27`, 'in a sentence'],
  ['Ref 2024 4111 1111 1111 1111', `Ref 2024 ${C}`, 'a number before the card is kept'],
  ['4111 1111 1111 1111 2024', `${C} 2024`, 'a number after the card is kept'],
  // mixed
  [
    'Alice <alice@example.com>, +1-202-555-0147, card 4111-1111-1111-1111 on 2024-01-15',
    `Alice <${E}>, ${P}, card ${C} on 2024-01-15`,
    'all three kinds in one string',
  ],
];

/** Inputs that must come out unchanged. */
export const FALSE_POSITIVES = [
  ['2024-01-15', 'date'],
  ['2024-01-15T10:30:00Z', 'ISO timestamp'],
  ['2024-01-15T10:30:00.123+01:00', 'ISO timestamp with offset'],
  ['2024.01.15', 'date with dots'],
  ['10:30:00', 'time'],
  ['1.2.3.4', 'version'],
  ['v10.0.19041', 'Windows build version'],
  ['1.17.6', 'semver'],
  ['2.0.0-rc.1', 'semver pre-release'],
  ['192.168.1.1', 'IPv4'],
  ['192.168.1.1:8080', 'IPv4 with port'],
  ['10.0.0.255', 'IPv4'],
  ['4111 1111 1111 1112', 'invoice number, card-shaped but fails Luhn'],
  ['4111111111111112', '16 digits failing Luhn'],
  ['12345', 'short number'],
  ['Order 12345 shipped', 'short number in text'],
  ['1,234,567.89', 'amount'],
  ['$1,234,567.89', 'amount with currency'],
  ['550e8400-e29b-41d4-a716-446655440000', 'UUID'],
  ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'SHA-256 hex hash'],
  ['da39a3ee5e6b4b0d3255bfef95601890afd80709', 'SHA-1 hex hash'],
  ['user@localhost', 'dotless domain (decision: not an internet mailbox)'],
  ['root@localhost', 'dotless domain'],
  ['icon@2x.png', 'image asset name'],
  ['npm i @bytecodealliance/jco@1.17.6', 'package@version'],
  ['a@b.c', 'one-letter top-level label'],
  ['alice@example.c0m', 'top-level label with a digit'],
  ['@example.com', 'no local part'],
  ['alice@', 'no domain'],
  ['1705314600001', '13-digit millisecond timestamp (passes Luhn, but no card starts with 1)'],
  ['9123456789012348', '16-digit ID passing Luhn with a non-card first digit'],
  ['12345678901234567890', '20 digits'],
  ['ISBN 978-3-16-148410-0', 'ISBN'],
  ['DE89 3704 0044 0532 0130 00', 'IBAN (not in scope)'],
  ['ORD-2024-000123', 'order id'],
  ['123-456-7890', 'not a North American number (area code starts with 1)'],
  ['555-0147', 'seven-digit local number (too short to say)'],
  ['202 555 0147', 'space-separated groups (decision: not matched)'],
  ['+1 5', 'plus sign and short number'],
  ['52.520008, 13.404954', 'coordinates'],
  ['Total 1234 5678', 'two groups of digits'],
  ['', 'empty string'],
];

/** [only= value, input, expected] */
export const ONLY_CASES = [
  ['email', 'alice@example.com +1-202-555-0147 4111111111111111', `${E} +1-202-555-0147 4111111111111111`],
  ['phone', 'alice@example.com +1-202-555-0147 4111111111111111', `alice@example.com ${P} 4111111111111111`],
  ['card', 'alice@example.com +1-202-555-0147 4111111111111111', `alice@example.com +1-202-555-0147 ${C}`],
  ['email,card', 'alice@example.com +1-202-555-0147 4111111111111111', `${E} +1-202-555-0147 ${C}`],
  ['card, phone', 'alice@example.com (202) 555-0147 4111-1111-1111-1111', `alice@example.com ${P} ${C}`],
];

/** [params, expected: 'ok' or substrings the error must contain] */
export const VALIDATE_CASES = [
  [[], 'ok'],
  [['only=email'], 'ok'],
  [['only=email,card'], 'ok'],
  [['only=phone, card'], 'ok'],
  [['only=email,phone,card'], 'ok'],
  [['only=emails'], ['unknown kind "emails"', 'expected email, phone or card', 'did you mean email?']],
  [['only=email,ssn'], ['unknown kind "ssn"', 'expected email, phone or card']],
  [['only=Email'], ['unknown kind "Email"', 'did you mean email?']],
  [['foo=bar'], ['unknown parameter "foo=bar"', 'expected only=KINDS', 'email, phone, card']],
  [['email'], ['unknown parameter "email"', 'did you mean only=email?']],
  [['onyl=email'], ['unknown parameter "onyl=email"', 'did you mean only=...?']],
  [['only='], ['only= needs at least one kind', 'email, phone, card']],
  [['only'], ['parameter "only" needs a value']],
  [['only=email,,card'], ['empty kind in "only=email,,card"']],
  [['only=email', 'only=card'], ['only= is given more than once']],
];

// Arguments of enforce(), as componentize-js passes them.
export const caveat = (overrides = {}) => ({
  raw: 'af:get_user:pii_guard:deny',
  phase: 'after',
  tool: 'get_user',
  policy: 'pii_guard',
  action: 'deny',
  params: [],
  ...overrides,
});
export const subject = { user: 'ann', roles: ['analyst'], agent: undefined, attributes: [] };
export const request = (result, tool = 'get_user') => ({
  tool,
  arguments: '{}',
  result,
  nowUnixMs: 1705314600000n,
  session: '',
});

export const RESULT = JSON.stringify({
  content: [
    {
      type: 'text',
      text: JSON.stringify({ name: 'Alice', email: 'alice@example.com', phone: '+1-202-555-0147', since: '2024-01-15' }),
    },
  ],
  structuredContent: {
    name: 'Alice',
    email: 'alice@example.com',
    phone: '+1-202-555-0147',
    backup: 'alice.backup@example.org',
    card: '4111 1111 1111 1111',
    since: '2024-01-15',
  },
  isError: false,
});
