import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, errorType, KeygateError, problemResponse, toProblem } from './errors.ts';

describe('error codes', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it.each(Object.entries(ERROR_CODES))(
    '%s is documented in the README with its status',
    (code, { status }) => {
      expect(readme).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    },
  );

  it('renders problem+json with the Keygate-Error header', async () => {
    const res = problemResponse(new KeygateError('KG_PROVIDER_NOT_FOUND', 'provider x not found'), 'req_1');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('keygate-error')).toBe('KG_PROVIDER_NOT_FOUND');
    expect(await res.json()).toEqual({
      type: 'urn:keygate:error:provider-not-found',
      title: 'Unknown provider',
      status: 404,
      detail: 'provider x not found',
      code: 'KG_PROVIDER_NOT_FOUND',
      requestId: 'req_1',
    });
  });

  it('tells the caller when to retry a condition that passes on its own', () => {
    const res = problemResponse(new KeygateError('KG_AUDIT_UNAVAILABLE'));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(problemResponse(new KeygateError('KG_NOT_FOUND')).headers.get('retry-after')).toBeNull();
  });

  it('never leaks the message of an unexpected error', () => {
    const problem = toProblem(new Error('password=hunter2 at db'));
    expect(problem.code).toBe('KG_INTERNAL');
    expect(JSON.stringify(problem)).not.toContain('hunter2');
    expect(errorType('KG_SIGNATURE_MISMATCH')).toBe('urn:keygate:error:signature-mismatch');
  });
});
