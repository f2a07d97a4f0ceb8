/**
 * The seed's `buildSignStr`: keys sorted by UTF-16 code unit, `key=value` joined by `&`,
 * null / undefined / empty string skipped, objects as JSON, no URL-encoding.
 * `simple` and `token` modes use it here; scripts get the same rule inside the sandbox.
 */
export function buildSignStr(fields: Iterable<[string, unknown]>): string {
  const parts: Array<[string, string]> = [];
  for (const [key, value] of fields) {
    if (value === null || value === undefined || value === '') continue;
    parts.push([key, typeof value === 'object' ? JSON.stringify(value) : String(value)]);
  }
  parts.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return parts.map(([k, v]) => `${k}=${v}`).join('&');
}
