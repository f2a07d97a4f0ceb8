/**
 * `keygate`: the command line. Every command has --help; errors go to stderr with a non-zero
 * exit; --json prints one machine-readable object.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../config.ts';
import { KeygateError } from '../errors.ts';
import { StartupError } from '../server/startup-error.ts';
import { type Command, type CommandIo, helpText, parseCommandArgs, UsageError } from './args.ts';
import { adminCommands } from './commands/admin.ts';
import { inboundCommands } from './commands/inbound.ts';
import { providerCommands } from './commands/providers.ts';
import { serverCommands } from './commands/server.ts';
import { tenantCommands } from './commands/tenants.ts';

export const COMMANDS: Command[] = [
  ...serverCommands,
  ...tenantCommands,
  ...providerCommands,
  ...inboundCommands,
  ...adminCommands,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: keygate <command> [options]',
    '',
    'keygate signs outbound requests to third-party APIs and verifies, limits and audits inbound partner calls.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary.split('\n')[0]}`),
    '',
    'Run `keygate <command> --help` for its options, `keygate --version` for the version. Configuration comes from the environment (see README).',
    'Exit status: 0 done; 1 failed (including a value the service refuses); 2 usage error, nothing done.',
    '',
  ].join('\n');
}

/** Finds the longest command name that prefixes argv (`provider apply`, `dev`). */
function findCommand(argv: string[]): { cmd: Command; rest: string[] } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const cmd = COMMANDS.find((c) => c.name === name);
    if (cmd) return { cmd, rest: argv.slice(words) };
  }
  return undefined;
}

/** The package's version, from package.json beside src/. */
function version(): string {
  const file = path.resolve(import.meta.dirname, '../../package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export async function runCli(argv: string[], io: CommandIo): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    io.stdout.write(`keygate ${version()}\n`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout.write(overview());
    return argv.length === 0 ? 1 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${argv[0]} `));
    const hint = group.length ? ` (did you mean: ${group.map((c) => c.name).join(', ')}?)` : '';
    io.stderr.write(`keygate: unknown command "${argv.slice(0, 2).join(' ')}"${hint}\nRun keygate --help.\n`);
    return 2;
  }
  const { cmd, rest } = found;
  // Known before parsing, so that a usage error is reported as JSON too.
  const json = rest.includes('--json');
  try {
    const args = parseCommandArgs(cmd, rest);
    if (args.help) {
      io.stdout.write(helpText(cmd));
      return 0;
    }
    return (await cmd.run(args, io)) ?? 0;
  } catch (err) {
    return reportError(err, cmd, io, json);
  }
}

/**
 * One line on stderr naming the problem; with --json, one JSON object `{"error":{code,message}}`
 * whatever failed: a KG_* code of the API's list, or KG_USAGE, KG_CONFIG, KG_STARTUP,
 * KG_INTERNAL. Exit 2 for KG_USAGE (see UsageError), 1 for everything else.
 */
function reportError(err: unknown, cmd: Command, io: CommandIo, json: boolean): number {
  let message: string;
  let code = 1;
  let errorCode = 'KG_INTERNAL';
  if (err instanceof UsageError) {
    message = `${err.message}\nUsage: keygate ${cmd.usage}`;
    code = 2;
    errorCode = 'KG_USAGE';
  } else if (err instanceof KeygateError) {
    message = `${err.message} (${err.code})`;
    const details = err.extra.errors as Array<{ path: string; message: string }> | undefined;
    if (details?.length) message += `\n${details.map((d) => `  ${d.path}: ${d.message}`).join('\n')}`;
    // A failed dry-run (`script test`) carries what the script logged before it failed.
    const logs = err.extra.logs as string[] | undefined;
    if (logs?.length) message += `\nlog:\n${logs.map((l) => `  ${l}`).join('\n')}`;
  } else if (err instanceof ConfigError || err instanceof StartupError) {
    message = err.message;
    errorCode = err instanceof ConfigError ? 'KG_CONFIG' : 'KG_STARTUP';
  } else {
    message = `unexpected error: ${(err as Error)?.message ?? String(err)}`;
  }
  if (json && err instanceof KeygateError) {
    io.stderr.write(`${JSON.stringify({ error: { code: err.code, message: err.message, ...err.extra } })}\n`);
  } else if (json) {
    // Without the human form's usage line.
    const detail = err instanceof Error && errorCode !== 'KG_INTERNAL' ? err.message : message;
    io.stderr.write(`${JSON.stringify({ error: { code: errorCode, message: detail } })}\n`);
  } else {
    io.stderr.write(`keygate ${cmd.name}: ${message}\n`);
  }
  return code;
}

if (import.meta.main) {
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
  });
  // Long-running commands (serve, dev) return undefined-free only after shutdown.
  process.exitCode = code;
}
