/** JSON logs (pino). Every log line of a request carries its `requestId`. */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'keygate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Every `err` field is a summarizeError summary, written as it is: pino's own serializer would
      // rebuild it as an Error, dropping the causes' codes. An error passed raw is summarized here,
      // so a driver error's extra properties (mysql2's `sql`, with every value) never reach a line.
      serializers: { err: (value: unknown) => (isPlainObject(value) ? value : summarizeError(value)) },
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

function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** What a log line may say about an error: see `summarizeError`. */
export interface ErrorSummary {
  name: string;
  code?: string | number;
  message: string;
  stack?: string;
  cause?: ErrorSummary;
}

const MESSAGE_CHARS = 200;
const CAUSE_DEPTH = 3;

/**
 * An error as a log field: its name, code and the start of its message, and the same for its
 * causes, three deep; its stack only when asked for (an unexpected error, where the place it was
 * thrown matters). Nothing else: driver errors (mysql2, ioredis, undici) carry more enumerable
 * properties that pino would copy into the line, such as mysql2's `sql`, the query text with every
 * value inlined. The message is cut because a database's own message can quote the values it
 * refused. A thrown value that is not an error is named by its type only: it may be a secret.
 */
export function summarizeError(err: unknown, options: { stack?: boolean } = {}): ErrorSummary {
  return summarize(err, options.stack === true, 0);
}

function summarize(err: unknown, withStack: boolean, depth: number): ErrorSummary {
  const e = err as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    stack?: unknown;
    cause?: unknown;
  } | null;
  // Duck-typed rather than `instanceof Error`: errors from another realm (a vm context) count too.
  if (typeof e !== 'object' || e === null || typeof e.message !== 'string') {
    return { name: typeof err, message: 'a thrown value that is not an Error' };
  }
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    ...(typeof e.code === 'string' || typeof e.code === 'number' ? { code: e.code } : {}),
    message: e.message.slice(0, MESSAGE_CHARS),
    ...(withStack && typeof e.stack === 'string' ? { stack: e.stack } : {}),
    ...(e.cause === undefined || depth >= CAUSE_DEPTH ? {} : { cause: summarize(e.cause, false, depth + 1) }),
  };
}
