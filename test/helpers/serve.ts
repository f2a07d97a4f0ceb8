/** `keygate serve` as a child process, for tests and the benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { ListenerRole } from '../../src/config.ts';

export const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

export interface ServeChild {
  child: ChildProcess;
  port: number;
  /** Every line the child wrote to stdout and stderr so far. */
  output: string[];
  exited: Promise<number | null>;
}

/**
 * Spawns `keygate serve --roles <role>` on port 0 and reads the port it bound from its "keygate
 * listening" log line (so it logs at info), instead of guessing a free port another test could
 * take first. `main` runs another checkout's CLI (the benchmark's A/B).
 */
export async function spawnServe(opts: {
  role: ListenerRole;
  env: Record<string, string>;
  main?: string;
  nodeArgs?: string[];
  timeoutMs?: number;
}): Promise<ServeChild> {
  const portVariable = `KEYGATE_${opts.role.toUpperCase()}_PORT`;
  const child = spawn(
    process.execPath,
    [
      '--no-node-snapshot',
      '--disable-warning=ExperimentalWarning',
      ...(opts.nodeArgs ?? []),
      opts.main ?? MAIN,
      'serve',
      '--roles',
      opts.role,
    ],
    {
      env: {
        PATH: process.env.PATH ?? '',
        KEYGATE_HOST: '127.0.0.1',
        [portVariable]: '0',
        KEYGATE_LOG_LEVEL: 'info',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`keygate child did not start (it must log at info level or lower):\n${output.join('\n')}`),
      );
    }, opts.timeoutMs ?? 60_000);
    const onLine = (line: string) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; ports?: Partial<Record<ListenerRole, number>> };
        const bound = entry.ports?.[opts.role];
        if (entry.msg === 'keygate listening' && bound) {
          clearTimeout(timer);
          resolve(bound);
        }
      } catch {
        // not a JSON log line
      }
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`keygate child exited with ${code}:\n${output.join('\n')}`));
    });
  });
  return { child, port, output, exited };
}
