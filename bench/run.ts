/**
 * `npm run bench`: every benchmark, each reported as a ratio against a baseline measured in the
 * same run. `npm run bench -- outbound` (or sandbox, inbound, limiter) runs one part.
 * Load tests target 127.0.0.1 only and stop by themselves.
 */
import { REDIS_TEST_URL } from '../test/helpers/db.ts';
import { DEFAULT_ROUNDS } from './load.ts';

const parts = process.argv.slice(2);
const wanted = (name: string) => parts.length === 0 || parts.includes(name);
const durationSec = Number(process.env.BENCH_DURATION_SEC ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? DEFAULT_ROUNDS);

if (wanted('sandbox')) {
  const { benchSandbox, printSandbox } = await import('./sandbox.ts');
  console.log('sandbox (seed request script, sync path, token cached):');
  printSandbox(await benchSandbox());
  console.log('');
}
if (wanted('outbound')) {
  const { benchOutbound, printOutbound } = await import('./outbound.ts');
  printOutbound(await benchOutbound({ durationSec, rounds }));
  console.log('');
}
if (wanted('limiter')) {
  const { benchLimiter } = await import('./limiter.ts');
  const tb = await benchLimiter(REDIS_TEST_URL, { algorithm: 'token-bucket' });
  const gcra = await benchLimiter(REDIS_TEST_URL, { algorithm: 'gcra' });
  console.log('rate limiter decisions against local Redis (target >= 20000/s):');
  console.log(
    `  token-bucket ${Math.round(tb.decisionsPerSec)}/s   gcra ${Math.round(gcra.decisionsPerSec)}/s`,
  );
  console.log('');
}
if (wanted('inbound')) {
  const { benchInbound, printInbound } = await import('./inbound.ts');
  printInbound(await benchInbound({ durationSec, rounds }));
}
