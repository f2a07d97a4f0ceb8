/** Running the `keygate` CLI from tests: as a real child process, or in-process through runCli. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { runCli } from '../../src/cli/main.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `keygate <args>` as a user runs it: a fresh Node process with only PATH and `env`. */
export function runKeygateProcess(
  args: string[],
  env: Record<string, string>,
  stdin = '',
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--no-node-snapshot', '--disable-warning=ExperimentalWarning', MAIN, ...args],
      {
        env: { PATH: process.env.PATH, KEYGATE_LOG_LEVEL: 'warn', ...env },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(stdin);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The same command in this process (faster; shares nothing but the environment given). */
export async function runKeygateInProcess(argv: string[], env: Record<string, string>): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const collect = (sink: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        sink(String(chunk));
        done();
      },
    });
  const code = await runCli(argv, {
    stdout: collect((s) => {
      stdout += s;
    }),
    stderr: collect((s) => {
      stderr += s;
    }),
    stdin: new PassThrough(),
    env: { ...env, KEYGATE_LOG_LEVEL: 'silent' },
  });
  return { code, stdout, stderr };
}
