/** Request paths as gateways must read them before passing them on. */

/**
 * Whether `path` holds a `.` or `..` segment, as it is or percent-encoded (`%2e`, and `%2f` / `%5c`
 * as separators): an upstream or URL parser that normalises `/a/../b` would otherwise serve a
 * path the gateway never allowed. Most paths have neither `.` nor `%`, and are not scanned.
 */
export function hasDotSegment(path: string): boolean {
  if (!path.includes('.') && !path.includes('%')) return false;
  const loose = path.replace(/%2e/gi, '.').replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  return loose.split(/[/\\]/).some((segment) => segment === '.' || segment === '..');
}
