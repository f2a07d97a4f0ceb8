import { ON_REDIS_DOWN_BEHAVIOURS, RATE_LIMIT_ALGORITHMS } from '../../inbound/ratelimit/policy.ts';
import {
  createPartnerKey,
  listPartnerKeys,
  type PartnerKeyView,
  parseRate,
  RATE_FORMAT,
  retirePartnerSecret,
  revokePartnerKey,
  rotatePartnerKey,
  setPartnerKeyScopes,
  updatePartnerKeyPolicy,
} from '../../services/partner-keys.ts';
import { addRoute, listRoutes, type RouteView, removeRoute } from '../../services/routes.ts';
import {
  type Command,
  optionalChoice,
  optionalWholeNumber,
  output,
  outputList,
  type ParsedArgs,
  requirePositional,
  requireString,
  UsageError,
  versionNumber,
} from '../args.ts';
import { CLI_ACTOR, withServices } from '../context.ts';

/** partner-key and route commands (inbound API). */
export const inboundCommands: Command[] = [
  {
    name: 'partner-key create',
    usage:
      'partner-key create --tenant T --name N [--algorithm token-bucket|gcra] [--rate 10/s] [--burst 20] [--on-redis-down fail-open|fail-closed|local] [--scopes S,...] [--json]',
    summary:
      'Creates an inbound API key with its rate-limit policy. The key id and secret are printed once.\n' +
      'Defaults: token-bucket, 10/s, burst 20, local (in-process limiting while Redis is down), no scopes.\n' +
      'A route that lists one of the key’s --scopes (e.g. orders:read) admits the key.',
    options: {
      tenant: { type: 'string' },
      name: { type: 'string' },
      algorithm: { type: 'string' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      'on-redis-down': { type: 'string' },
      scopes: { type: 'string' },
    },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const name = requireString(args, 'name');
      const rate = rateOption(args);
      const burst = optionalWholeNumber(args, 'burst');
      const created = await withServices(io, (s) =>
        createPartnerKey(s.ctx, CLI_ACTOR, {
          tenant,
          name,
          algorithm: optionalChoice(args, 'algorithm', RATE_LIMIT_ALGORITHMS),
          ...rate,
          burst,
          onRedisDown: optionalChoice(args, 'on-redis-down', ON_REDIS_DOWN_BEHAVIOURS),
          scopes: optionalList(args, 'scopes') ?? undefined,
        }),
      );
      output(
        io,
        args,
        { ...keySummary(created), secret: created.secret, secretVersion: created.secretVersion },
        [
          `partner key ${created.keyId} created (${describePolicy(created)})`,
          'secret (store it now, it is not shown again):',
          created.secret,
        ],
      );
      return 0;
    },
  },
  {
    name: 'partner-key set-policy',
    usage:
      'partner-key set-policy --tenant T KEY_ID [--algorithm token-bucket|gcra] [--rate 10/s] [--burst N] [--on-redis-down fail-open|fail-closed|local] [--json]',
    summary:
      'Changes the key’s rate-limit policy; options left out keep their value. Every gateway node applies it at once.',
    options: {
      tenant: { type: 'string' },
      algorithm: { type: 'string' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      'on-redis-down': { type: 'string' },
    },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const keyId = requirePositional(args, 0, 'KEY_ID');
      const change = {
        algorithm: optionalChoice(args, 'algorithm', RATE_LIMIT_ALGORITHMS),
        ...rateOption(args),
        burst: optionalWholeNumber(args, 'burst'),
        onRedisDown: optionalChoice(args, 'on-redis-down', ON_REDIS_DOWN_BEHAVIOURS),
      };
      if (Object.values(change).every((v) => v === undefined)) {
        throw new UsageError('give at least one of --algorithm, --rate, --burst, --on-redis-down');
      }
      const view = await withServices(io, (s) =>
        updatePartnerKeyPolicy(s.ctx, CLI_ACTOR, { tenant, keyId, ...change }),
      );
      output(io, args, keySummary(view), [`partner key ${keyId}: ${describePolicy(view)}`]);
      return 0;
    },
  },
  {
    name: 'partner-key set-scopes',
    usage: 'partner-key set-scopes --tenant T KEY_ID --scopes S,... [--json]',
    summary:
      'Replaces the key’s scopes (--scopes "" removes them all). Every gateway node applies it at once.',
    options: { tenant: { type: 'string' }, scopes: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const keyId = requirePositional(args, 0, 'KEY_ID');
      const scopes = optionalList(args, 'scopes');
      if (scopes === null) throw new UsageError('--scopes is required (--scopes "" removes them all)');
      const view = await withServices(io, (s) =>
        setPartnerKeyScopes(s.ctx, CLI_ACTOR, { tenant, keyId, scopes }),
      );
      output(io, args, keySummary(view), [`partner key ${keyId}: scopes ${describeScopes(view.scopes)}`]);
      return 0;
    },
  },
  {
    name: 'partner-key rotate',
    usage: 'partner-key rotate --tenant T KEY_ID [--json]',
    summary:
      'Adds a second secret to the key, printed once. Both secrets verify until `partner-key retire-secret`.',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const keyId = requirePositional(args, 0, 'KEY_ID');
      const rotated = await withServices(io, (s) => rotatePartnerKey(s.ctx, CLI_ACTOR, { tenant, keyId }));
      output(
        io,
        args,
        {
          keyId,
          secret: rotated.secret,
          secretVersion: rotated.secretVersion,
          liveSecretVersions: rotated.liveSecretVersions,
        },
        [
          `partner key ${keyId}: secret version ${rotated.secretVersion} added; live versions ${rotated.liveSecretVersions.join(', ')}`,
          'new secret (store it now, it is not shown again):',
          rotated.secret,
        ],
      );
      return 0;
    },
  },
  {
    name: 'partner-key retire-secret',
    usage: 'partner-key retire-secret --tenant T KEY_ID [--version N] [--json]',
    summary: 'Retires one of two live secrets (by default the older one); it no longer verifies.',
    optionHelp: { version: 'the secret version to retire (default: the older of the two)' },
    options: { tenant: { type: 'string' }, version: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const keyId = requirePositional(args, 0, 'KEY_ID');
      const version =
        typeof args.values.version === 'string' ? versionNumber(args.values.version, '--version') : undefined;
      const view = await withServices(io, (s) =>
        retirePartnerSecret(s.ctx, CLI_ACTOR, { tenant, keyId, version }),
      );
      output(
        io,
        args,
        { keyId, retiredVersion: view.retiredVersion, liveSecretVersions: view.liveSecretVersions },
        [
          `partner key ${keyId}: secret version ${view.retiredVersion} retired; live versions ${view.liveSecretVersions.join(', ')}`,
        ],
      );
      return 0;
    },
  },
  {
    name: 'partner-key revoke',
    usage: 'partner-key revoke --tenant T KEY_ID [--json]',
    summary: 'Revokes the key: every request signed with it is refused with KG_KEY_REVOKED.',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const keyId = requirePositional(args, 0, 'KEY_ID');
      const view = await withServices(io, (s) => revokePartnerKey(s.ctx, CLI_ACTOR, { tenant, keyId }));
      output(io, args, keySummary(view), [`partner key ${keyId} revoked`]);
      return 0;
    },
  },
  {
    name: 'partner-key list',
    usage: 'partner-key list --tenant T [--json]',
    summary: 'Lists the tenant’s partner keys with their policies and live secret versions (never secrets).',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const { items: keys } = await withServices(io, (s) => listPartnerKeys(s.ctx, CLI_ACTOR, tenant));
      const items = keys.map(keySummary);
      outputList(
        io,
        args,
        items,
        (k) =>
          `${k.keyId}  ${k.status.padEnd(7)}  ${k.name}  ${describePolicy(k)}  secrets v${k.liveSecretVersions.join(', v')}  scopes ${describeScopes(k.scopes)}`,
        '(no partner keys)',
        // The former name of `items`, kept for scripts written against it.
        { keys: items },
      );
      return 0;
    },
  },
  {
    name: 'route add',
    usage:
      'route add --tenant T --prefix /orders --upstream http://orders.internal:8000 [--timeout-ms 5000] [--keys KEY_ID,...] [--scopes S,...] [--json]',
    summary:
      'Adds an inbound route: requests under the prefix go to the upstream, path unchanged.\n' +
      'Without --keys and --scopes every key of the tenant may call it; with either, the keys listed\n' +
      'and the keys holding one of the scopes may. --keys "" alone closes it to all keys.',
    options: {
      tenant: { type: 'string' },
      prefix: { type: 'string' },
      upstream: { type: 'string' },
      'timeout-ms': { type: 'string' },
      keys: { type: 'string' },
      scopes: { type: 'string' },
    },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const prefix = requireString(args, 'prefix');
      const upstream = requireString(args, 'upstream');
      const timeoutMs = optionalWholeNumber(args, 'timeout-ms');
      const keyIds = optionalList(args, 'keys');
      const scopes = optionalList(args, 'scopes');
      const route = await withServices(io, (s) =>
        addRoute(s.ctx, CLI_ACTOR, { tenant, prefix, upstream, timeoutMs, keyIds, scopes }),
      );
      output(io, args, route, [`route ${route.id} added: ${describeRoute(route)}`]);
      return 0;
    },
  },
  {
    name: 'route list',
    usage: 'route list --tenant T [--json]',
    summary: 'Lists the tenant’s inbound routes.',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const { items: routes } = await withServices(io, (s) => listRoutes(s.ctx, CLI_ACTOR, tenant));
      outputList(io, args, routes, (r) => `${r.id}  ${describeRoute(r)}`, '(no routes)', {
        // The former name of `items`, kept for scripts written against it.
        routes,
      });
      return 0;
    },
  },
  {
    name: 'route remove',
    usage: 'route remove --tenant T ROUTE_ID|PREFIX [--json]',
    summary: 'Removes an inbound route.',
    options: { tenant: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const routeId = requirePositional(args, 0, 'ROUTE_ID');
      await withServices(io, (s) => removeRoute(s.ctx, CLI_ACTOR, { tenant, routeId }));
      output(io, args, { removed: routeId }, [`route ${routeId} removed`]);
      return 0;
    },
  },
];

function optionalString(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** `a,b` -> ['a', 'b']; `""` -> []; absent -> null. */
function optionalList(args: ParsedArgs, name: string): string[] | null {
  const v = optionalString(args, name);
  if (v === undefined) return null;
  return v
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** --rate: its form is checked here (exit 2); a rate of that form out of range is the service's to refuse. */
function rateOption(args: ParsedArgs): { rate?: number; periodSeconds?: number } {
  const text = optionalString(args, 'rate');
  if (text === undefined) return {};
  if (!RATE_FORMAT.test(text))
    throw new UsageError(`--rate ${JSON.stringify(text)} must look like 10/s, 600/m, 5/10s or 1000/h`);
  return parseRate(text);
}

function keySummary(k: PartnerKeyView) {
  return {
    keyId: k.keyId,
    tenantId: k.tenantId,
    name: k.name,
    status: k.status,
    policy: k.policy,
    liveSecretVersions: k.liveSecretVersions,
    scopes: k.scopes,
    createdAt: k.createdAt,
    revokedAt: k.revokedAt,
  };
}

function describePolicy(k: PartnerKeyView): string {
  const p = k.policy;
  const period = p.periodSeconds === 1 ? 's' : `${p.periodSeconds}s`;
  return `${p.algorithm} ${p.rate}/${period} burst ${p.burst}, ${p.onRedisDown} when Redis is down`;
}

function describeScopes(scopes: readonly string[]): string {
  return scopes.length ? scopes.join(', ') : '(none)';
}

function describeRoute(r: RouteView): string {
  const who: string[] = [];
  if (r.keyIds !== null) who.push(r.keyIds.length ? `keys ${r.keyIds.join(', ')}` : 'no key by id');
  if (r.scopes !== null) who.push(r.scopes.length ? `scopes ${r.scopes.join(', ')}` : 'no scope');
  return `${r.prefix} -> ${r.upstream} (timeout ${r.timeoutMs} ms, ${who.length ? who.join('; ') : 'all keys'})`;
}
