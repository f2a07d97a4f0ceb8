import { afterAll, describe, expect, it } from 'vitest';
import { createSandbox } from './index.ts';
import { RunBatcher } from './run-batch.ts';
import { requestInput, requestScript, testHost } from './test-support.ts';

describe('RunBatcher', () => {
  it("runs what one turn asked for at the turn's end, each owner's runs together, in the order asked", async () => {
    const batcher = new RunBatcher();
    const a = {};
    const b = {};
    const ran: string[] = [];
    const run = (label: string) => () => {
      ran.push(label);
      return label;
    };
    const answers = Promise.all([
      batcher.schedule(a, run('a1')),
      batcher.schedule(b, run('b1')),
      batcher.schedule(a, run('a2')),
      batcher.schedule(b, run('b2')),
      batcher.schedule(a, run('a3')),
    ]);
    expect(ran).toEqual([]);
    await Promise.resolve();
    expect(ran).toEqual([]);
    expect(await answers).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
    expect(ran).toEqual(['a1', 'a2', 'a3', 'b1', 'b2']);
  });

  it('fails only the run that throws, and follows a run that answers with a promise', async () => {
    const batcher = new RunBatcher();
    const owner = {};
    const results = await Promise.allSettled([
      batcher.schedule(owner, () => 1),
      batcher.schedule(owner, () => {
        throw new Error('boom');
      }),
      batcher.schedule(owner, () => Promise.resolve(3)),
      batcher.schedule(owner, () => Promise.reject(new Error('later'))),
      batcher.schedule(owner, () => 5),
    ]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      1,
      'boom',
      3,
      'later',
      5,
    ]);
  });

  it('leaves runs asked for by the code the batch resumes to the next turn', async () => {
    const batcher = new RunBatcher();
    const owner = {};
    const ran: string[] = [];
    const first = batcher
      .schedule(owner, () => ran.push('first'))
      .then(() => batcher.schedule(owner, () => ran.push('resumed')));
    const second = batcher.schedule({}, () => ran.push('second'));
    await Promise.all([first, second]);
    expect(ran).toEqual(['first', 'second', 'resumed']);
  });
});

describe('script runs of one turn', () => {
  const sandbox = createSandbox({ cpuMs: 2000 });
  afterAll(() => sandbox.dispose());

  it('each get their own answer when several scripts run in one batch, a failing one included', async () => {
    const [one, two, failing] = await Promise.all([
      sandbox.compile('request', requestScript('reqHeaders.set("X-Script", "one");'), 'batch:one'),
      sandbox.compile('request', requestScript('reqHeaders.set("X-Script", "two");'), 'batch:two'),
      sandbox.compile('request', requestScript('throw new Error("no");'), 'batch:failing'),
    ]);
    const host = testHost({ token: 'Bearer t' });
    const runs = [one, two, failing, one, two, one].map((script, i) =>
      script.runRequest(requestInput({ uri: `/orders/${i}` }), host),
    );
    const results = await Promise.allSettled(runs);
    const seen = results.map((r) =>
      r.status === 'fulfilled' ? `${r.value.headers['X-Script']} ${r.value.uri}` : 'failed',
    );
    expect(seen).toEqual([
      'one /orders/0',
      'two /orders/1',
      'failed',
      'one /orders/3',
      'two /orders/4',
      'one /orders/5',
    ]);
    for (const r of results) if (r.status === 'fulfilled') expect(r.value.path).toBe('sync');
  });
});
