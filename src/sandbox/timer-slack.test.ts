import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import ivm from 'isolated-vm';
import { afterAll, describe, expect, it } from 'vitest';
import { setTimerSlack } from './timer-slack.ts';

const onLinux = process.platform === 'linux';
const SLACK_FILE = '/proc/self/timerslack_ns';

function threadIds(): string[] {
  return readdirSync('/proc/self/task');
}

function slackOf(tid: string): number {
  return Number(readFileSync(`/proc/${tid}/timerslack_ns`, 'utf8'));
}

describe.runIf(onLinux)('setTimerSlack', () => {
  const original = onLinux ? readFileSync(SLACK_FILE, 'utf8').trim() : '';
  afterAll(() => writeFileSync(SLACK_FILE, original));

  it('leaves the system default alone for 0', () => {
    writeFileSync(SLACK_FILE, '50000');
    expect(setTimerSlack(0)).toBe(false);
    expect(slackOf(String(process.pid))).toBe(50_000);
  });

  it("sets the main thread's slack, and isolated-vm's threads started afterwards inherit it", async () => {
    const before = new Set(threadIds());
    expect(setTimerSlack(1000)).toBe(true);
    expect(slackOf(String(process.pid))).toBe(1_000_000);

    // A timed run starts isolated-vm's timer thread; an async one its worker threads too.
    const isolate = new ivm.Isolate({ memoryLimit: 16 });
    try {
      const context = await isolate.createContext();
      const fn = await context.eval('(function () { return 1 })', { reference: true });
      expect(fn.applySync(undefined, [], { timeout: 50 })).toBe(1);
      expect(await context.eval('2', { timeout: 50 })).toBe(2);
      const started = threadIds().filter((tid) => !before.has(tid));
      expect(started.length).toBeGreaterThan(0);
      expect(started.map(slackOf)).toEqual(started.map(() => 1_000_000));
    } finally {
      isolate.dispose();
    }
  });

  it('does nothing from a worker thread, where /proc/self would be the main thread', async () => {
    writeFileSync(SLACK_FILE, '50000');
    const worker = new Worker(
      `import('${new URL('./timer-slack.ts', import.meta.url).href}')
         .then((m) => require('node:worker_threads').parentPort.postMessage(m.setTimerSlack(1000)))`,
      { eval: true },
    );
    const answer = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(answer).toBe(false);
    expect(slackOf(String(process.pid))).toBe(50_000);
  });
});
