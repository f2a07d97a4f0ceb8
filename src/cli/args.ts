/** Argument parsing and output shared by every `keygate` command. */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/**
 * The command line as typed is wrong (exit 2, `KG_USAGE`): an unknown option, a missing or extra
 * argument, or an option value not of the option's form (a whole number, a duration, a rate, one of
 * its words). Nothing was done. A value of the right form that the service refuses (a name with
 * characters a name may not have, `--burst 0`) is the service's KG_VALIDATION_FAILED, exit 1.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  /** e.g. `tenant create` */
  name: string;
  usage: string;
  summary: string;
  options?: ParseArgsConfig['options'];
  /** Help for this command's options where the shared wording (OPTION_HELP) does not fit. */
  optionHelp?: Record<string, string>;
  run(args: ParsedArgs, io: CommandIo): Promise<number | undefined>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  json: boolean;
}

const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseCommandArgs(cmd: Command, argv: string[]): ParsedArgs & { help: boolean } {
  let parsed: { values: ParsedArgs['values']; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...cmd.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/, ''));
  }
  const { values, positionals } = parsed;
  const help = values.help === true;
  // A word too many is a mistake to report, not to drop: `tenant create multi word` would create
  // "multi", and a value typed after `secret set ... NAME` would sit in shell history unused.
  const names = positionalNames(cmd.usage);
  if (!help && positionals.length > names.length) {
    const extra = positionals.slice(names.length).map((p) => `"${p}"`);
    const takes = names.length ? `it takes ${names.join(' ')}` : 'it takes no arguments';
    const stdinHint = cmd.usage.includes('< value')
      ? ' (the value is read from stdin, never the command line)'
      : '';
    throw new UsageError(
      `unexpected argument${extra.length > 1 ? 's' : ''} ${extra.join(' ')}: ${takes}${stdinHint}`,
    );
  }
  return { values, positionals, json: values.json === true, help };
}

/** The positional arguments a usage line names: upper-case words that are not an option's value. */
export function positionalNames(usage: string): string[] {
  const words = usage.replace(/[[\]]/g, ' ').split(/\s+/).filter(Boolean);
  return words.filter((w, i) => /^[A-Z][A-Z_]*(\|[A-Z][A-Z_]*)*$/.test(w) && !words[i - 1]?.startsWith('-'));
}

export function requireString(args: ParsedArgs, name: string): string {
  const v = args.values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** An option that takes one of a fixed list of words; undefined when it is absent. */
export function optionalChoice<T extends string>(
  args: ParsedArgs,
  name: string,
  choices: readonly T[],
): T | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !choices.includes(v as T))
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}`);
  return v as T;
}

export function requireChoice<T extends string>(args: ParsedArgs, name: string, choices: readonly T[]): T {
  requireString(args, name);
  return optionalChoice(args, name, choices)!;
}

/** A whole number in decimal digits (`--burst 20`); undefined when the option is absent. */
export function optionalWholeNumber(args: ParsedArgs, name: string): number | undefined {
  const v = args.values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v))
    throw new UsageError(`--${name} must be a whole number`);
  return Number(v);
}

/** A provider or secret version: 1, 2, ... */
export function versionNumber(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) < 1)
    throw new UsageError(`${what} must be a version number (1, 2, ...)`);
  return Number(text);
}

export function requirePositional(args: ParsedArgs, index: number, what: string): string {
  const v = args.positionals[index];
  if (!v) throw new UsageError(`${what} is required`);
  return v;
}

/** Prints one JSON object with --json, otherwise human lines. */
export function output(io: CommandIo, args: ParsedArgs, value: object, human: string[]): void {
  io.stdout.write(args.json ? `${JSON.stringify(value)}\n` : `${human.join('\n')}\n`);
}

/**
 * A `list` command's output: with --json one object, `{"items": [...]}` with every item (the
 * fields the admin API's list endpoint gives), otherwise one line per item or `empty`. `extra`
 * adds members beside `items`.
 */
export function outputList<T>(
  io: CommandIo,
  args: ParsedArgs,
  items: T[],
  line: (item: T) => string,
  empty: string,
  extra: object = {},
): void {
  output(io, args, { items, ...extra }, items.length ? items.map(line) : [empty]);
}

export function helpText(cmd: Command): string {
  const lines = [`Usage: keygate ${cmd.usage}`, '', cmd.summary, ''];
  const opts = Object.entries({ ...cmd.options, ...COMMON_OPTIONS });
  if (opts.length) {
    lines.push('Options:');
    for (const [name, opt] of opts) {
      const o = opt as { type: string; short?: string };
      const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ' <value>' : ''}`;
      lines.push(`  ${flag.padEnd(30)} ${cmd.optionHelp?.[name] ?? OPTION_HELP[name] ?? ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const OPTION_HELP: Record<string, string> = {
  json: 'print one machine-readable JSON object',
  help: 'show this help',
  tenant: 'tenant id or name',
  name: 'a label for the credential',
  role: 'gateway_admin | tenant_admin | tenant_developer',
  'expires-in': 'lifetime, e.g. 3600s, 90m, 12h, 30d (default: no expiry)',
  file: 'path of the JSON file',
  'expected-revision': 'the revision you last saw; refused with KG_VERSION_CONFLICT if it changed since',
  kind: 'request | response (default: request)',
  draft: 'create the version without activating it',
  to: 'version to re-activate (default: the one before the active)',
  'not-sensitive': 'do not mask this value in responses (like AppKey)',
  sensitive: 'mask this value in responses (default for all but AppKey)',
  roles: 'listeners to run: outbound,admin,inbound (default: all)',
  version: 'provider version to test (default: active)',
  send: 'also send the signed request and run the response script',
  algorithm: 'token-bucket | gcra',
  rate: 'requests per period, e.g. 10/s, 600/m',
  burst: 'burst size (bucket capacity)',
  'on-redis-down': 'fail-open | fail-closed | local',
  prefix: 'path prefix, e.g. /orders',
  upstream: 'internal upstream URL',
  'timeout-ms': 'upstream timeout in milliseconds',
  keys: 'comma-separated partner key ids allowed (default: all keys of the tenant)',
  scopes: 'comma-separated scopes, e.g. orders:read,orders:write ("" for none)',
  'older-than': 'an age: 3600s, 90m, 12h, 90d',
};

export async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A secret value from stdin, one trailing newline dropped. At a terminal it is typed blind: the
 * terminal's echo is off while it is read (Enter ends it, Ctrl-C cancels), so the value never
 * shows on the screen or in its scrollback.
 */
export async function readSecretFromStdin(io: CommandIo, prompt: string): Promise<string> {
  const tty = io.stdin as NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
  if (!tty.isTTY || typeof tty.setRawMode !== 'function') {
    return (await readStdin(io.stdin)).replace(/\r?\n$/, '');
  }
  // Echo off before the prompt shows: what is typed (or pasted) the moment it appears stays unseen.
  tty.setRawMode(true);
  try {
    io.stderr.write(`${prompt} (typing is not shown; Enter to finish): `);
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer | string) => {
        for (const ch of String(chunk)) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            finish();
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            finish();
            reject(new UsageError('cancelled: no secret was set'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      const finish = () => {
        tty.removeListener('data', onData);
        tty.pause();
        io.stderr.write('\n');
      };
      tty.on('data', onData);
      tty.resume();
    });
  } finally {
    tty.setRawMode(false);
  }
}

/** `3600s`, `90m`, `12h`, `30d` or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration ${text}: use e.g. 3600s, 90m, 12h, 30d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
