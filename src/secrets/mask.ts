/**
 * The one place that masks secrets. A masker replaces every occurrence of a secret value with
 * `****`: verbatim, JSON-escaped (once, or twice for JSON nested in a JSON string), URL-encoded, hex (lower and upper case), and base64 / base64url
 * (padded, unpadded, and the part of the encoding that a value determines when it sits inside a
 * larger encoded blob, as in `Basic base64(AppKey:AppSecret)`).
 * It runs on every proxied response, so all forms are compiled into one regular expression once.
 */

export const MASK = '****';
export type Masker = (text: string) => string;

/** Shorter values would mask noise (`"1"`, `"true"`). */
const MIN_VALUE_LENGTH = 4;
/** A base64 fragment of a value at an unaligned offset must be this long to be worth masking. */
const MIN_FRAGMENT_LENGTH = 8;

const identity: Masker = (text) => text;

/**
 * `ignoreCase` is for text that was case-folded on the way, such as a URL's host name: it masks a
 * secret whose letters changed case, at the price of a second expression (built on error paths only).
 */
export function createMasker(values: Iterable<string>, opts: { ignoreCase?: boolean } = {}): Masker {
  const forms = new Set<string>();
  for (const value of values) {
    if (value.length < MIN_VALUE_LENGTH) continue;
    for (const form of encodedForms(value)) forms.add(form);
  }
  if (forms.size === 0) return identity;
  // Longest first, so a value wins over any shorter value or fragment that starts at the same place.
  const alternatives = [...forms].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(alternatives.join('|'), opts.ignoreCase ? 'gi' : 'g');
  return (text) => text.replace(pattern, MASK);
}

/** Masks every string (and object key) in a JSON-like value; a number that spells a secret becomes `****`. */
export function maskJson(value: unknown, mask: Masker): unknown {
  if (typeof value === 'string') return mask(value);
  if (typeof value === 'number' || typeof value === 'bigint') {
    const text = String(value);
    return mask(text) === text ? value : MASK;
  }
  if (Array.isArray(value)) return value.map((item) => maskJson(item, mask));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[mask(key)] = maskJson(item, mask);
    return out;
  }
  return value;
}

function encodedForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const jsonEscaped = JSON.stringify(value).slice(1, -1);
  // Escaped twice: a JSON document carried as a string inside another (Alipay's biz_content).
  const jsonEscapedTwice = JSON.stringify(jsonEscaped).slice(1, -1);
  const forms = [value, jsonEscaped, jsonEscapedTwice, encodeURIComponent(value)];
  forms.push(forms[3]!.replaceAll('%20', '+'));
  // JSON-escaped, then sent as a form field (Alipay's biz_content is JSON in a form).
  const formOfJson = encodeURIComponent(jsonEscaped);
  forms.push(formOfJson, formOfJson.replaceAll('%20', '+'));
  // Bodies handled as bytes are often decoded as latin1 (one char per byte): match UTF-8 there too.
  forms.push(
    bytes.toString('latin1'),
    Buffer.from(jsonEscaped, 'utf8').toString('latin1'),
    Buffer.from(jsonEscapedTwice, 'utf8').toString('latin1'),
  );
  const hex = bytes.toString('hex');
  forms.push(hex, hex.toUpperCase());
  const base64 = bytes.toString('base64');
  forms.push(base64, base64.replace(/=+$/, ''));
  for (let offset = 0; offset < 3; offset++) {
    const fragment = base64Fragment(bytes, offset);
    if (offset === 0 || fragment.length >= MIN_FRAGMENT_LENGTH) forms.push(fragment);
  }
  // base64url is base64 with two letters swapped and no padding.
  for (const form of forms.slice(forms.indexOf(base64)))
    forms.push(form.replaceAll('+', '-').replaceAll('/', '_'));
  return forms.filter((form) => form.length >= MIN_VALUE_LENGTH);
}

/**
 * The base64 characters fully determined by `bytes` when they start `offset` bytes into a larger
 * blob: character k covers bits [6k, 6k + 6), so it belongs to the value when those bits lie
 * within [8 * offset, 8 * (offset + length)).
 */
function base64Fragment(bytes: Buffer, offset: number): string {
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes, Buffer.alloc(3)]).toString('base64');
  return encoded.slice(Math.ceil((8 * offset) / 6), Math.floor((8 * (offset + bytes.length)) / 6));
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
