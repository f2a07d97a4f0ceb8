/** JSON logs (pino). Every log line of a request carries its `requestId`. */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'keygate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: credentials must never be logged, even if a caller passes headers.
      redact: {
        paths: [
          'headers.authorization',
          'headers["x-signature"]',
          'headers.cookie',
          '*.headers.authorization',
          '*.headers["x-signature"]',
          'secret',
          'token',
          'value',
        ],
        censor: '[REDACTED]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}

/**
 * An error as a log field: name, message, code and stack only. Driver errors (mysql2, ioredis,
 * undici) carry more enumerable properties, such as query text with its values, that pino would
 * otherwise copy into the line.
 */
export function summarizeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { value: String(err) };
  return { name: err.name, message: err.message, code: (err as { code?: unknown }).code, stack: err.stack };
}
