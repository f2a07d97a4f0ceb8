import { loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { createServices, type Services } from '../server/create-services.ts';
import type { Actor } from '../services/actor.ts';
import type { CommandIo } from './args.ts';

/** The CLI acts as the operator on the server. */
export const CLI_ACTOR: Actor = { kind: 'cli' };

/**
 * Builds the services from the environment for one command, and always closes them. Like the
 * server, a command applies pending migrations unless KEYGATE_MIGRATE_ON_START=false (then
 * `keygate migrate` does, when the operator chooses).
 */
export async function withServices<T>(io: CommandIo, fn: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env);
  const logger = createLogger(io.env.KEYGATE_LOG_LEVEL ?? 'warn', io.stderr);
  const services = await createServices(config, { logger });
  try {
    return await fn(services);
  } finally {
    await services.close();
  }
}
