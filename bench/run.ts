/**
 * `npm run bench`: every benchmark, each reported as a ratio against a baseline measured in the
 * same run. `npm run bench -- outbound` (or sandbox, inbound, limiter) runs one part;
 * `npm run bench -- outbound-ab` (or inbound-ab) compares two keygate variants (see bench/ab.ts).
 * Load tests target 127.0.0.1 only and stop by themselves.
 */
import { REDIS_TEST_URL } from '../test/helpers/db.ts';
import { DEFAULT_CONNECTION_LEVELS, DEFAULT_ROUNDS } from './load.ts';

const parts = process.argv.slice(2);
// outbound-ab and inbound-ab compare two keygate builds or settings; they run only when asked for.
const wanted = (name: string) => parts.includes(name) || (parts.length === 0 && !name.endsWith('-ab'));
const durationSec = Number(process.env.BENCH_DURATION_SEC ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? DEFAULT_ROUNDS);
// BENCH_CONNECTIONS="32,128": the concurrency levels of the HTTP benchmarks (see load.ts).
const connectionLevels = process.env.BENCH_CONNECTIONS
  ? process.env.BENCH_CONNECTIONS.split(',').map((n) => Number(n.trim()))
  : DEFAULT_CONNECTION_LEVELS;
if (!connectionLevels.every((n) => Number.isInteger(n) && n > 0)) {
  console.error(
    `BENCH_CONNECTIONS: expected positive integers separated by commas, got "${process.env.BENCH_CONNECTIONS}"`,
  );
  process.exit(2);
}

if (wanted('sandbox')) {
  const { benchSandbox, printSandbox } = await import('./sandbox.ts');
  console.log('sandbox (seed request script, sync path, token cached):');
  printSandbox(await benchSandbox());
  console.log('');
}
if (wanted('outbound')) {
  const { benchOutbound, printOutbound } = await import('./outbound.ts');
  printOutbound(await benchOutbound({ durationSec, rounds, connectionLevels }));
  console.log('');
}
if (wanted('limiter')) {
  const { benchLimiter } = await import('./limiter.ts');
  const tb = await benchLimiter(REDIS_TEST_URL, { algorithm: 'token-bucket' });
  const gcra = await benchLimiter(REDIS_TEST_URL, { algorithm: 'gcra' });
  // As the inbound listener takes them: a nonce claimed with each spend, over many keys or one.
  const claims = await benchLimiter(REDIS_TEST_URL, { algorithm: 'token-bucket', mode: 'claims' });
  const claimsOneKey = await benchLimiter(REDIS_TEST_URL, {
    algorithm: 'token-bucket',
    mode: 'claims',
    keys: 1,
    concurrency: 32,
  });
  console.log('rate limiter decisions against local Redis (target >= 20000/s):');
  console.log(
    `  token-bucket ${Math.round(tb.decisionsPerSec)}/s   gcra ${Math.round(gcra.decisionsPerSec)}/s`,
  );
  console.log(
    `  with nonce claims (token-bucket): 1000 keys ${claims.decisionsPerSec}/s   one key, 32 in flight ${claimsOneKey.decisionsPerSec}/s`,
  );
  console.log('');
}
if (wanted('inbound')) {
  const { benchInbound, printInbound } = await import('./inbound.ts');
  printInbound(await benchInbound({ durationSec, rounds, connectionLevels }));
}
for (const part of ['outbound', 'inbound'] as const) {
  if (!wanted(`${part}-ab`)) continue;
  const { parseAbEnv, printAb } = await import('./ab.ts');
  const env = parseAbEnv(process.env.BENCH_AB_ENV ?? '');
  const main = process.env.BENCH_AB_MAIN || undefined;
  if (Object.keys(env).length === 0 && main === undefined) {
    console.error(
      `${part}-ab: set BENCH_AB_ENV="NAME=value ..." and/or BENCH_AB_MAIN=<other checkout>/src/cli/main.ts for B`,
    );
    process.exit(2);
  }
  const opts = {
    env,
    main,
    pairs: Number(process.env.BENCH_AB_PAIRS ?? 8),
    windowSec: Number(process.env.BENCH_DURATION_SEC ?? 4),
  };
  if (part === 'outbound') {
    const { benchOutboundAb } = await import('./outbound.ts');
    printAb('outbound', await benchOutboundAb(opts));
  } else {
    const { benchInboundAb } = await import('./inbound.ts');
    printAb('inbound', await benchInboundAb(opts));
  }
  console.log('');
}
