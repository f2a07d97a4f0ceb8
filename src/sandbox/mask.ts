/**
 * Masks sensitive values in text that leaves the sandbox (script log lines and script error
 * messages), with the one masking rule of keygate (src/secrets/mask.ts).
 */
import { createMasker, MASK } from '../secrets/mask.ts';

export { MASK };

// Only log lines and error messages are masked, so the masker is not cached: a cache keyed by the
// array would go stale if a caller changed the array in place, and that would leak.
export function maskSensitive(text: string, values: readonly string[]): string {
  if (values.length === 0 || text === '') return text;
  return createMasker(values)(text);
}
