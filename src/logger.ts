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
