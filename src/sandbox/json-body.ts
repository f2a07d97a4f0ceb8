/** A JSON body carried as its text (see BodyValue in types.ts). */
import { KeygateError } from '../errors.ts';
import type { BodyValue } from './types.ts';

/**
 * The body of `text`, a JSON text: `value` is parsed the first time it is read, and text that is
 * not JSON fails that read with KG_BAD_REQUEST. `text` is not enumerable, so the body still
 * compares and copies as { kind, value }.
 */
export function jsonBodyFromText(text: string): Extract<BodyValue, { kind: 'json' }> {
  let value: unknown;
  let parsed = false;
  const body = {
    kind: 'json' as const,
    get value() {
      if (!parsed) {
        try {
          value = JSON.parse(text);
        } catch (err) {
          throw new KeygateError(
            'KG_BAD_REQUEST',
            `request body is not valid JSON: ${(err as Error).message}`,
          );
        }
        parsed = true;
      }
      return value;
    },
  };
  Object.defineProperty(body, 'text', { value: text, enumerable: false });
  return body;
}
