/**
 * CLI commands that mirror admin-API operations beyond DESIGN.md's list: listing and revoking
 * tokens, activating a draft, diffing versions, validating a script. Each calls the same service
 * as its admin route.
 */
import { readFileSync } from 'node:fs';
import { purgeAuditLog } from '../../services/audit-purge.ts';
import { activateProviderVersion, diffProviderVersions } from '../../services/providers.ts';
import { validateScript } from '../../services/scripts.ts';
import {
  listAdminTokens,
  listServiceTokens,
  revokeAdminToken,
  revokeServiceToken,
} from '../../services/tokens.ts';
import {
  type Command,
  optionalChoice,
  optionalWholeNumber,
  output,
  outputList,
  type ParsedArgs,
  parseDuration,
  requirePositional,
  requireString,
  UsageError,
  versionNumber,
} from '../args.ts';
import { CLI_ACTOR, withServices } from '../context.ts';

function optionalTenant(args: ParsedArgs): string | null {
  const tenant = args.values.tenant;
  return typeof tenant === 'string' && tenant !== '' ? tenant : null;
}

function versionArg(text: string, what: string): number | 'active' {
  if (text === 'active') return 'active';
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a version number or "active"`);
  return versionNumber(text, what);
}

export const adminCommands: Command[] = [
  {
    name: 'token list',
    usage: 'token list [--tenant T] [--json]',
    summary:
      "Lists admin tokens: a tenant's members, or without --tenant the gateway_admin tokens. Never the tokens.",
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const { items: tokens } = await withServices(io, (s) =>
        listAdminTokens(s.ctx, CLI_ACTOR, { tenant: optionalTenant(args) }),
      );
      outputList(
        io,
        args,
        tokens,
        (t) =>
          `${t.id}  ${t.role.padEnd(16)}  ${t.status.padEnd(7)}  ${t.name}${t.expiresAt ? `  expires ${t.expiresAt}` : ''}`,
        '(no admin tokens)',
      );
      return 0;
    },
  },
  {
    name: 'token revoke',
    usage: 'token revoke [--tenant T] TOKEN_ID [--json]',
    summary:
      'Revokes an admin token at once (give --tenant for a tenant member; none for a gateway_admin token).',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const id = requirePositional(args, 0, 'TOKEN_ID');
      await withServices(io, (s) => revokeAdminToken(s.ctx, CLI_ACTOR, { tenant: optionalTenant(args), id }));
      output(io, args, { id, revoked: true }, [`admin token ${id} revoked`]);
      return 0;
    },
  },
  {
    name: 'service-token list',
    usage: 'service-token list --tenant T [--json]',
    summary: "Lists a tenant's service tokens (never the tokens themselves).",
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const { items: tokens } = await withServices(io, (s) => listServiceTokens(s.ctx, CLI_ACTOR, tenant));
      outputList(io, args, tokens, (t) => `${t.id}  ${t.status.padEnd(7)}  ${t.name}`, '(no service tokens)');
      return 0;
    },
  },
  {
    name: 'service-token revoke',
    usage: 'service-token revoke --tenant T TOKEN_ID [--json]',
    summary: 'Revokes a service token; every proxy node stops accepting it at once.',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const id = requirePositional(args, 0, 'TOKEN_ID');
      await withServices(io, (s) => revokeServiceToken(s.ctx, CLI_ACTOR, tenant, id));
      output(io, args, { id, revoked: true }, [`service token ${id} revoked`]);
      return 0;
    },
  },
  {
    name: 'provider activate',
    usage: 'provider activate --tenant T PROVIDER VERSION [--expected-revision N] [--json]',
    summary:
      'Activates a version (for example a draft from `provider apply --draft`).\n' +
      '--expected-revision: fail with KG_VERSION_CONFLICT unless the provider is still at that revision.',
    options: { tenant: { type: 'string' }, 'expected-revision': { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const provider = requirePositional(args, 0, 'PROVIDER');
      const version = versionNumber(requirePositional(args, 1, 'VERSION'), 'VERSION');
      const expectedRevision = optionalWholeNumber(args, 'expected-revision');
      const p = await withServices(io, (s) =>
        activateProviderVersion(s.ctx, CLI_ACTOR, { tenant, provider, version, expectedRevision }),
      );
      output(io, args, { provider: p.name, activeVersion: p.activeVersion, revision: p.revision }, [
        `provider ${p.name} now runs version ${p.activeVersion} (revision ${p.revision})`,
      ]);
      return 0;
    },
  },
  {
    name: 'provider diff',
    usage: 'provider diff --tenant T PROVIDER FROM TO [--json]',
    summary:
      'Line diff of two versions (numbers or "active"): config as sorted pretty JSON, scripts line by line.',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const provider = requirePositional(args, 0, 'PROVIDER');
      const from = versionArg(requirePositional(args, 1, 'FROM'), 'FROM');
      const to = versionArg(requirePositional(args, 2, 'TO'), 'TO');
      const diff = await withServices(io, (s) =>
        diffProviderVersions(s.ctx, CLI_ACTOR, { tenant, provider, from, to }),
      );
      if (args.json) output(io, args, diff, []);
      else
        io.stdout.write(
          diff.identical ? `versions ${diff.from} and ${diff.to} are identical\n` : diff.unified,
        );
      return 0;
    },
  },
  {
    name: 'script validate',
    usage: 'script validate --tenant T -f script.js [--kind request|response] [--json]',
    summary:
      'Compiles a signing script in the sandbox; a syntax error is reported with line and column (exit 1).',
    optionHelp: { file: 'path of the script (.js)' },
    options: { tenant: { type: 'string' }, file: { type: 'string', short: 'f' }, kind: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const file = requireString(args, 'file');
      const kind = optionalChoice(args, 'kind', ['request', 'response'] as const) ?? 'request';
      let source: string;
      try {
        source = readFileSync(file, 'utf8');
      } catch (err) {
        throw new UsageError(
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      const result = await withServices(io, (s) =>
        validateScript(s.ctx, CLI_ACTOR, { tenant, kind, source }),
      );
      output(
        io,
        args,
        result,
        result.valid
          ? [`${file}: ${kind} script compiles`]
          : [`${file}:${result.error.line ?? '?'}:${result.error.column ?? '?'}: ${result.error.message}`],
      );
      return result.valid ? 0 : 1;
    },
  },
  {
    name: 'audit purge',
    usage: 'audit purge --older-than 90d [--json]',
    summary:
      'Deletes the inbound audit rows (every tenant) older than the given age, 1,000 per statement, and records the purge in the admin audit.\n' +
      'KEYGATE_AUDIT_RETENTION_DAYS does the same on a timer.',
    options: { 'older-than': { type: 'string' } },
    async run(args, io) {
      const olderThanSeconds = parseDuration(requireString(args, 'older-than'));
      const result = await withServices(io, (s) => purgeAuditLog(s.ctx, CLI_ACTOR, { olderThanSeconds }));
      output(io, args, result, [`${result.deleted} audit rows older than ${result.olderThan} deleted`]);
      return 0;
    },
  },
];
