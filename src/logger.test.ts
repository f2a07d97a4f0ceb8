import { createConnection } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { MYSQL_ADMIN_URL } from '../test/helpers/db.ts';
import { captureLogLines } from '../test/helpers/log-lines.ts';
import { createLogger, summarizeError } from './logger.ts';

describe('summarizeError', () => {
  it('keeps the code and message of a mysql2 error, never the SQL with its values inlined', async () => {
    const conn = await createConnection(MYSQL_ADMIN_URL);
    let err: unknown;
    try {
      await conn.query('select * from kg_no_such_table where body = ?', ['row-value-7f3a']);
    } catch (e) {
      err = e;
    } finally {
      await conn.end();
    }
    expect((err as { sql?: string }).sql).toContain('row-value-7f3a');
    const summary = summarizeError(err);
    expect(summary).toMatchObject({ name: 'Error', code: 'ER_NO_SUCH_TABLE' });
    expect(summary.message).toContain('kg_no_such_table');
    expect(JSON.stringify(summary)).not.toContain('row-value-7f3a');
    expect(Object.keys(summary).sort()).toEqual(['code', 'message', 'name']);
  });

  it('cuts the message and gives the stack only when asked', () => {
    const err = new Error('x'.repeat(1000));
    expect(summarizeError(err).message).toHaveLength(200);
    expect(summarizeError(err).stack).toBeUndefined();
    expect(summarizeError(err, { stack: true }).stack).toBe(err.stack);
  });

  it('follows causes three deep', () => {
    let err: Error = new Error('root', { cause: Object.assign(new Error('io'), { code: 'ECONNRESET' }) });
    for (let i = 0; i < 3; i++) err = new Error(`wrap ${i}`, { cause: err });
    expect(summarizeError(err)).toEqual({
      name: 'Error',
      message: 'wrap 2',
      cause: {
        name: 'Error',
        message: 'wrap 1',
        cause: { name: 'Error', message: 'wrap 0', cause: { name: 'Error', message: 'root' } },
      },
    });
    const shallow = summarizeError(
      new TypeError('outer', { cause: Object.assign(new Error('io'), { code: 'ECONNRESET' }) }),
    );
    expect(shallow).toEqual({
      name: 'TypeError',
      message: 'outer',
      cause: { name: 'Error', code: 'ECONNRESET', message: 'io' },
    });
  });

  it('names a thrown non-error by its type only', () => {
    expect(JSON.stringify(summarizeError('sk_live_secret'))).not.toContain('sk_live');
    expect(summarizeError('sk_live_secret').name).toBe('string');
    expect(summarizeError(undefined).name).toBe('undefined');
  });
});

describe('the err field of a log line', () => {
  it('is the summary as made, with the codes of its causes', () => {
    const log = captureLogLines();
    const logger = createLogger('info', log.sink);
    const cause = Object.assign(new Error('Connection lost: The server closed the connection.'), {
      code: 'PROTOCOL_CONNECTION_LOST',
    });
    const err = Object.assign(new Error('secrets could not be loaded', { cause }), {
      name: 'KeygateError',
      code: 'KG_SECRETS_UNAVAILABLE',
    });
    logger.error({ err: summarizeError(err) }, 'load failed');
    expect(log.lines[0]!.err).toEqual({
      name: 'KeygateError',
      code: 'KG_SECRETS_UNAVAILABLE',
      message: 'secrets could not be loaded',
      cause: {
        name: 'Error',
        code: 'PROTOCOL_CONNECTION_LOST',
        message: 'Connection lost: The server closed the connection.',
      },
    });
  });

  it('is summarized when an error is passed raw, so a driver error cannot add its SQL', () => {
    const log = captureLogLines();
    const logger = createLogger('info', log.sink);
    const err = Object.assign(new Error('Duplicate entry'), {
      code: 'ER_DUP_ENTRY',
      sql: "insert into audit_log values ('row-value-7f3a')",
    });
    logger.error({ err }, 'insert failed');
    expect(log.lines[0]!.err).toEqual({ name: 'Error', code: 'ER_DUP_ENTRY', message: 'Duplicate entry' });
    expect(log.raw[0]).not.toContain('row-value-7f3a');
  });
});
