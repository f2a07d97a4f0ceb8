import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { dryRunScript } from '../../outbound/dry-run.ts';
import { applyProviderVersion, rollbackProvider } from '../../services/providers.ts';
import { setSecret } from '../../services/secrets.ts';
import {
  type Command,
  output,
  readSecretFromStdin,
  requirePositional,
  requireString,
  UsageError,
  versionNumber,
} from '../args.ts';
import { CLI_ACTOR, withServices } from '../context.ts';

/**
 * Reads a provider.json; `request` / `response` may name a script file (relative to the JSON
 * file) instead of holding the source.
 */
export function readProviderFile(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`cannot read provider file ${file}: ${reason}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new UsageError(`${file} is not a JSON object`);
  const config = { ...(doc as Record<string, unknown>) };
  for (const field of ['request', 'response']) {
    const value = config[field];
    if (typeof value === 'string' && /^[\w./-]+\.js$/.test(value)) {
      const scriptPath = path.resolve(path.dirname(file), value);
      if (!existsSync(scriptPath)) throw new UsageError(`${field} script ${value} not found next to ${file}`);
      config[field] = readFileSync(scriptPath, 'utf8');
    }
  }
  return config;
}

export const providerCommands: Command[] = [
  {
    name: 'provider apply',
    usage: 'provider apply --tenant T -f provider.json [--draft] [--json]',
    summary: 'Creates a new provider config version from a file and activates it unless --draft.',
    options: { tenant: { type: 'string' }, file: { type: 'string', short: 'f' }, draft: { type: 'boolean' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const config = readProviderFile(requireString(args, 'file'));
      const draft = args.values.draft === true;
      const v = await withServices(io, (s) =>
        applyProviderVersion(s.ctx, CLI_ACTOR, { tenant, config, draft }),
      );
      output(io, args, { provider: v.provider, version: v.version, active: v.active }, [
        `provider ${v.provider} version ${v.version} ${v.active ? 'created and activated' : 'created as draft'}`,
      ]);
      return 0;
    },
  },
  {
    name: 'provider rollback',
    usage: 'provider rollback --tenant T PROVIDER [--to VERSION] [--json]',
    summary: 'Re-activates an earlier version (by default the one before the active version).',
    options: { tenant: { type: 'string' }, to: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const provider = requirePositional(args, 0, 'PROVIDER');
      const toText = args.values.to;
      const to = typeof toText === 'string' ? versionNumber(toText, '--to') : undefined;
      const p = await withServices(io, (s) => rollbackProvider(s.ctx, CLI_ACTOR, { tenant, provider, to }));
      output(io, args, { provider: p.name, activeVersion: p.activeVersion }, [
        `provider ${p.name} now runs version ${p.activeVersion}`,
      ]);
      return 0;
    },
  },
  {
    name: 'secret set',
    usage: 'secret set --tenant T PROVIDER NAME [--not-sensitive] [--json] < value',
    summary:
      'Sets a provider secret from stdin (one trailing newline is dropped); at a terminal it is typed without echo. Never printed.',
    options: {
      tenant: { type: 'string' },
      'not-sensitive': { type: 'boolean' },
      sensitive: { type: 'boolean' },
    },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const provider = requirePositional(args, 0, 'PROVIDER');
      const name = requirePositional(args, 1, 'NAME');
      const value = await readSecretFromStdin(io, `value of ${provider}/${name}`);
      if (!value) throw new UsageError('no secret value on stdin');
      const sensitive =
        args.values['not-sensitive'] === true ? false : args.values.sensitive === true ? true : undefined;
      const r = await withServices(io, (s) =>
        setSecret(s.ctx, CLI_ACTOR, { tenant, provider, name, value, sensitive }),
      );
      output(io, args, { provider: r.provider, name: r.name, version: r.version, updatedAt: r.updatedAt }, [
        `secret ${r.provider}/${r.name} ${r.created ? 'set' : 'rotated'} (version ${r.version})`,
      ]);
      return 0;
    },
  },
  {
    name: 'script test',
    usage: 'script test --tenant T PROVIDER -f request.json [--version N] [--send] [--json]',
    summary:
      'Dry-run: signs the sample request with the active (or given) version and prints what would be sent, secrets masked.\n' +
      'request.json: {"method":"POST","path":"/orders","query":{},"headers":{},"body":{...}}',
    options: {
      tenant: { type: 'string' },
      file: { type: 'string', short: 'f' },
      version: { type: 'string' },
      send: { type: 'boolean' },
    },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const provider = requirePositional(args, 0, 'PROVIDER');
      const file = requireString(args, 'file');
      let sample: unknown;
      try {
        sample = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new UsageError(
          `cannot read sample request ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      const versionText = args.values.version;
      const version = typeof versionText === 'string' ? versionNumber(versionText, '--version') : undefined;
      const result = await withServices(io, (s) =>
        dryRunScript(s, CLI_ACTOR, { tenant, provider, version, sample, send: args.values.send === true }),
      );
      const human = [
        `provider ${result.provider} version ${result.version}`,
        `${result.request.method} ${result.request.url}`,
        ...Object.entries(result.request.headers).map(([k, v]) => `${k}: ${v}`),
        '',
        result.request.body ?? '(no body)',
        ...(result.logs.length ? ['', 'log:', ...result.logs.map((l) => `  ${l}`)] : []),
        ...(result.timing.scriptUs !== null
          ? [`script: ${result.timing.scriptUs} us (${result.timing.path})`]
          : []),
        ...(result.response ? ['', `response ${result.response.status}`, result.response.body] : []),
      ];
      output(io, args, result, human);
      return 0;
    },
  },
];
