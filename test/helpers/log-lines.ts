/** A writable a test logger writes to, keeping every JSON line as text and parsed. */
import { Writable } from 'node:stream';

export interface LogLines {
  sink: Writable;
  /** Each line as written. */
  raw: string[];
  /** Each line parsed. */
  lines: Array<Record<string, unknown>>;
}

export function captureLogLines(): LogLines {
  const raw: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { sink, raw, lines };
}
