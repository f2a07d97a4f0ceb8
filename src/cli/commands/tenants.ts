import { createTenant, toTenantView } from '../../services/tenants.ts';
import { ADMIN_ROLES, createAdminToken, createServiceToken } from '../../services/tokens.ts';
import {
  type Command,
  output,
  parseDuration,
  requireChoice,
  requirePositional,
  requireString,
  UsageError,
} from '../args.ts';
import { CLI_ACTOR, withServices } from '../context.ts';

export const tenantCommands: Command[] = [
  {
    name: 'tenant create',
    usage: 'tenant create NAME [--json]',
    summary: 'Creates a tenant.',
    async run(args, io) {
      const name = requirePositional(args, 0, 'NAME');
      const tenant = await withServices(io, (s) => createTenant(s.ctx, CLI_ACTOR, { name }));
      output(io, args, toTenantView(tenant), [`tenant ${tenant.name} created (id ${tenant.id})`]);
      return 0;
    },
  },
  {
    name: 'token create',
    usage: 'token create --role ROLE --name N [--tenant T] [--expires-in 30d] [--json]',
    summary: 'Creates an admin-API token (gateway_admin needs no tenant). The token is printed once.',
    options: {
      tenant: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      'expires-in': { type: 'string' },
    },
    async run(args, io) {
      const role = requireChoice(args, 'role', ADMIN_ROLES);
      const name = requireString(args, 'name');
      const tenant =
        typeof args.values.tenant === 'string' && args.values.tenant !== '' ? args.values.tenant : null;
      if (role === 'gateway_admin' && tenant !== null)
        throw new UsageError('a gateway_admin token belongs to no tenant: leave out --tenant');
      if (role !== 'gateway_admin' && tenant === null)
        throw new UsageError(`--tenant is required for a ${role} token`);
      const expires = args.values['expires-in'];
      const created = await withServices(io, (s) =>
        createAdminToken(s.ctx, CLI_ACTOR, {
          tenant,
          role,
          name,
          expiresInSeconds: typeof expires === 'string' ? parseDuration(expires) : null,
        }),
      );
      output(io, args, created, [
        `admin token ${created.id} (${created.role}) created; store it now, it is not shown again:`,
        created.token,
      ]);
      return 0;
    },
  },
  {
    name: 'service-token create',
    usage: 'service-token create --tenant T --name N [--json]',
    summary: 'Creates the token an internal service uses on the outbound proxy. Printed once.',
    options: { tenant: { type: 'string' }, name: { type: 'string' } },
    async run(args, io) {
      const tenant = requireString(args, 'tenant');
      const name = requireString(args, 'name');
      const created = await withServices(io, (s) => createServiceToken(s.ctx, CLI_ACTOR, { tenant, name }));
      output(io, args, created, [
        `service token ${created.id} created; store it now, it is not shown again:`,
        created.token,
      ]);
      return 0;
    },
  },
];
