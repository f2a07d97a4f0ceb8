/**
 * Child process for writer.mysql.test.ts: queues rows against an unreachable database, flushes
 * them (to the spool), prints its stats, then dies by SIGKILL without close(): a crash.
 * Usage: node crash-writer.fixture.ts <databaseUrl> <spoolDir> <idPrefix> <count>
 */
import { createDatabase } from '../../storage/db.ts';
import { createAuditWriter } from './index.ts';
import { sampleRow } from './test-fixtures.ts';

const [databaseUrl, spoolDir, prefix, count] = process.argv.slice(2);
if (!databaseUrl || !spoolDir || !prefix || !count)
  throw new Error('usage: <databaseUrl> <spoolDir> <idPrefix> <count>');
const { db } = createDatabase({ databaseUrl, dataDir: spoolDir });
const writer = createAuditWriter({ db, spoolDir, writeTimeoutMs: 1000, logger: { warn() {}, error() {} } });
for (let i = 0; i < Number(count); i += 1) writer.write(sampleRow(`${prefix}-${i}`));
await writer.flush();
process.stdout.write(`${JSON.stringify(writer.stats())}\n`);
process.kill(process.pid, 'SIGKILL');
