// The work queue's contract: dedup, one run per key at a time, concurrency across keys, retries with
// per-key backoff, permanent errors not retried, requeue-after, stop aborts running reconciles.
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, TemporaryError, WorkQueue, classifyError, type Reconciler } from '../../src/kube/workqueue.ts';
import { ApiError, RequestTimeoutError } from '../../src/kube/client.ts';

const queues: WorkQueue[] = [];
function queue(reconcile: Reconciler, options: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}): WorkQueue {
  const q = new WorkQueue({ name: 'test', reconcile, ...options });
  queues.push(q);
  return q;
}
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop()));
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(2);
  }
}

describe('WorkQueue', () => {
  it('coalesces 1,000 adds of one key into a few runs, never two at once', async () => {
    let runs = 0;
    let running = 0;
    let maxRunning = 0;
    let version = 0;
    let lastSeen = -1;
    const q = queue(async () => {
      runs++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(5);
      lastSeen = version; // level-triggered: reads the state as it is now
      running--;
    }, { concurrency: 4 }); // free workers must still not take a key that is running
    q.start();
    for (let i = 1; i <= 1000; i++) {
      version = i;
      q.add('ns/web-0');
      if (i % 100 === 0) await sleep(1);
    }
    await until(() => q.length === 0 && q.inFlight === 0);
    expect(maxRunning).toBe(1);
    expect(lastSeen).toBe(1000);
    // 10 bursts of adds, each at most one waiting run while one runs.
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(runs).toBeLessThanOrEqual(21);
  });

  it('runs different keys concurrently up to the limit', async () => {
    let running = 0;
    let maxRunning = 0;
    const done: string[] = [];
    const q = queue(async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(20);
      running--;
      done.push(key);
    }, { concurrency: 3 });
    q.start();
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) q.add(key);
    await until(() => done.length === 7);
    expect(maxRunning).toBe(3);
    expect([...done].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
  });

  it('retries a temporary failure with growing per-key delays, then forgets after success', async () => {
    const times: number[] = [];
    const q = queue(async () => {
      times.push(performance.now());
      if (times.length < 4) throw new TemporaryError('conflict');
      return Promise.resolve();
    }, { baseDelayMs: 20, maxDelayMs: 1_000 });
    q.start();
    q.add('k');
    await until(() => times.length === 4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 20, 40, 80 ms (timers fire late, never early)
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[1]).toBeGreaterThanOrEqual(39);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    await until(() => q.inFlight === 0);
    expect(q.numRequeues('k')).toBe(0);
  });

  it('treats an unclassified error as temporary and a PermanentError as final', async () => {
    const calls = new Map<string, number>();
    const q = queue(async (key) => {
      calls.set(key, (calls.get(key) ?? 0) + 1);
      if (key === 'broken') throw new PermanentError('invalid spec');
      if ((calls.get(key) ?? 0) === 1) throw new Error('ECONNRESET');
      return Promise.resolve();
    }, { baseDelayMs: 5 });
    q.start();
    q.add('broken');
    q.add('flaky');
    await until(() => calls.get('flaky') === 2);
    await sleep(100);
    expect(calls.get('broken')).toBe(1);
    expect(calls.get('flaky')).toBe(2);
    // A permanent failure waits for the key to change: adding it again runs it again.
    q.add('broken');
    await until(() => calls.get('broken') === 2);
  });

  it('honours TemporaryError.retryAfterMs and requeueAfterMs', async () => {
    const times: number[] = [];
    const q = queue(async () => {
      times.push(performance.now());
      if (times.length === 1) throw new TemporaryError('rate limited', { retryAfterMs: 60 });
      return Promise.resolve(times.length === 2 ? { requeueAfterMs: 80 } : {});
    });
    q.start();
    q.add('k');
    await until(() => times.length === 3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(59);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(79);
  });

  it('runs at once when a key waiting out its backoff is added again', async () => {
    const times: number[] = [];
    const q = queue(async () => {
      times.push(performance.now());
      if (times.length === 1) throw new TemporaryError('x', { retryAfterMs: 10_000 });
      return Promise.resolve();
    });
    q.start();
    q.add('k');
    await until(() => times.length === 1 && q.waiting === 1);
    q.add('k');
    await until(() => times.length === 2, 1_000);
    expect(q.waiting).toBe(0);
  });

  it('stop() aborts the running reconcile and waits for it', async () => {
    let sawAbort = false;
    let finished = false;
    const q = queue(async (_key, signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      sawAbort = signal.aborted;
      await sleep(10);
      finished = true;
    });
    q.start();
    q.add('k');
    await until(() => q.inFlight === 1);
    await q.stop();
    expect(sawAbort).toBe(true);
    expect(finished).toBe(true);
  });

  it('exports controller-runtime metric names in the injected registry', async () => {
    const registry = new Registry();
    const q = queue(async (key) => {
      if (key === 'bad') throw new PermanentError('no');
      return Promise.resolve();
    }, { registry, name: 'reports' });
    const other = queue(async () => Promise.resolve(), { registry, name: 'policies' });
    q.start();
    other.start();
    q.add('good');
    q.add('bad');
    other.add('p');
    await until(() => q.inFlight === 0 && q.length === 0 && other.inFlight === 0);
    await sleep(5);
    const text = await registry.metrics();
    expect(text).toContain('workqueue_adds_total{name="reports",controller="reports"} 2');
    expect(text).toContain('workqueue_adds_total{name="policies",controller="policies"} 1');
    expect(text).toContain('controller_runtime_reconcile_total{controller="reports",result="success"} 1');
    expect(text).toContain('controller_runtime_reconcile_total{controller="reports",result="error"} 1');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="reports"} 1');
    for (const name of ['workqueue_depth', 'workqueue_retries_total', 'workqueue_queue_duration_seconds_bucket', 'workqueue_work_duration_seconds_bucket', 'controller_runtime_reconcile_time_seconds_bucket', 'controller_runtime_active_workers', 'controller_runtime_max_concurrent_reconciles']) {
      expect(text).toContain(name);
    }
  });

  it('keeps keys that were waiting out a backoff across stop() and start()', async () => {
    let calls = 0;
    const q = queue(async () => {
      calls++;
      if (calls === 1) throw new TemporaryError('x', { retryAfterMs: 60_000 });
      return Promise.resolve();
    });
    q.start();
    q.add('k');
    await until(() => q.waiting === 1);
    await q.stop();
    expect(q.pendingKeys()).toEqual(['k']);
    q.start();
    await until(() => calls === 2);
  });

  it('classifies API errors for retry', () => {
    const api = (status: number, retryAfter?: string) => new ApiError(status, { reason: 'r', message: 'm' }, 'GET', '/x', retryAfter);
    expect(classifyError(api(409))).toBeInstanceOf(TemporaryError);
    expect(classifyError(api(503))).toBeInstanceOf(TemporaryError);
    const throttled = classifyError(api(429, '7'));
    expect(throttled).toBeInstanceOf(TemporaryError);
    expect((throttled as TemporaryError).retryAfterMs).toBe(7000);
    expect(classifyError(api(422))).toBeInstanceOf(PermanentError);
    expect(classifyError(api(403))).toBeInstanceOf(PermanentError);
    expect(classifyError(new RequestTimeoutError('slow'))).toBeInstanceOf(TemporaryError);
    expect(classifyError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBeInstanceOf(TemporaryError);
  });
});
