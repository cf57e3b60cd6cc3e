// A work queue with client-go's semantics: a key waiting in the queue is there once however often it is
// added (dedup), a key being reconciled is never handed to a second worker (added again meanwhile, it
// runs once more afterwards), failures retry with per-key exponential backoff under an overall token
// bucket, and different keys run up to `concurrency` at a time. Reconcilers are level-triggered: they get
// only the key and read the current state themselves, so coalescing many adds into one run loses nothing.
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { backoffDelay } from './backoff.ts';
import { ApiError, RequestTimeoutError, WatchStalledError } from './client.ts';
import { describeError, silentLogger, type KubeLogger } from './logger.ts';
import { counterIn, gaugeIn, histogramIn, WORKQUEUE_BUCKETS } from './metrics.ts';

export interface ReconcileResult {
  /** Run again after this long even if nothing changes (polling something we cannot watch). */
  requeueAfterMs?: number;
}

/** Worth retrying (conflict, timeout, 5xx): retried with this key's backoff, or after `retryAfterMs`. */
export class TemporaryError extends Error {
  override name = 'TemporaryError';
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options: { retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Retrying cannot help (invalid object, forbidden): logged and counted, not retried until the key is added again. */
export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * What an error from the API server means for a retry: Conflict, Too Many Requests, timeouts, 5xx and
 * network errors are temporary (honouring Retry-After); Bad Request, Forbidden, Not Found, Invalid and
 * other 4xx are permanent until something changes (a new event adds the key again).
 */
export function classifyError(error: unknown): TemporaryError | PermanentError {
  if (error instanceof TemporaryError || error instanceof PermanentError) return error;
  if (error instanceof ApiError) {
    const retryAfterMs = error.retryAfterSeconds ? error.retryAfterSeconds * 1000 : undefined;
    if (error.status === 409 || error.status === 429 || error.status >= 500 || error.status === 0) {
      return new TemporaryError(error.message, { cause: error, ...(retryAfterMs ? { retryAfterMs } : {}) });
    }
    return new PermanentError(error.message, { cause: error });
  }
  if (error instanceof RequestTimeoutError || error instanceof WatchStalledError) return new TemporaryError(error.message, { cause: error });
  return new TemporaryError(describeError(error), { cause: error });
}

export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

export interface WorkQueueOptions {
  /** Metric label (controller-runtime's `controller` / `name`); one per controller, bounded. */
  name: string;
  reconcile: Reconciler;
  /** Keys reconciled at the same time (never the same key twice). */
  concurrency?: number;
  /** Per-key backoff: baseDelayMs × 2^(failures-1), capped. controller-runtime: 5 ms … 1000 s. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Overall retry budget (token bucket): controller-runtime's 10 per second, burst 100. */
  retriesPerSecond?: number;
  retryBurst?: number;
  registry?: Registry;
  logger?: KubeLogger;
}

type ReconcileOutcome = 'success' | 'error' | 'requeue_after';

export class WorkQueue {
  readonly name: string;
  private readonly options: WorkQueueOptions;
  private readonly log: KubeLogger;
  private readonly concurrency: number;
  /** Keys ready to run, in order. */
  private readonly queue: string[] = [];
  /** Keys that need a run: waiting in `queue`, or being processed and added again meanwhile. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private tokens: number;
  private tokensAt = performance.now();
  private active = 0;
  private controller: AbortController | undefined;
  private drained: (() => void) | undefined;
  private readonly metrics: ReturnType<typeof createMetrics> | undefined;

  constructor(options: WorkQueueOptions) {
    this.options = options;
    this.name = options.name;
    this.log = options.logger ?? silentLogger;
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.tokens = options.retryBurst ?? 100;
    this.metrics = options.registry ? createMetrics(options.registry, this.name, this.concurrency) : undefined;
  }

  get length(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.active;
  }

  /** Keys waiting for a delayed retry or requeue. */
  get waiting(): number {
    return this.delayed.size;
  }

  /** Starts the workers. Keys added before start wait for it. */
  start(): void {
    if (this.controller) return;
    this.controller = new AbortController();
    this.pump();
  }

  /** Keys that will run (queued or waiting out a backoff), for tests and debugging. */
  pendingKeys(): string[] {
    return [...new Set([...this.queue, ...this.delayed.keys()])];
  }

  /**
   * Stops taking keys and aborts the signal handed to running reconciles (leadership lost); resolves
   * when the running ones have returned. Queued keys are kept for a later start().
   */
  async stop(): Promise<void> {
    const controller = this.controller;
    if (!controller) return;
    this.controller = undefined;
    controller.abort(new Error(`work queue ${this.name} stopped`));
    // Keys waiting out a backoff are not forgotten: they run first thing after the next start().
    const waiting = [...this.delayed.keys()];
    for (const [, entry] of this.delayed) clearTimeout(entry.timer);
    this.delayed.clear();
    for (const key of waiting) this.add(key);
    if (this.active > 0) await new Promise<void>((resolve) => { this.drained = resolve; });
  }

  /** Marks the key as needing a reconcile. Idempotent while the key waits. */
  add(key: string): void {
    this.metrics?.adds.inc({ name: this.name, controller: this.name });
    if (this.dirty.has(key)) return;
    const delayed = this.delayed.get(key);
    if (delayed) {
      // Something changed: run now rather than at the end of a backoff.
      clearTimeout(delayed.timer);
      this.delayed.delete(key);
    }
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return; // re-queued when the current run finishes
    this.queue.push(key);
    this.metrics?.depth.set({ name: this.name, controller: this.name }, this.queue.length);
    this.pump();
  }

  /** Adds the key after `delayMs`, unless it is added sooner (the earlier time wins). */
  addAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = performance.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Adds the key after its backoff: exponential per key, and never faster than the overall budget. */
  addRateLimited(key: string): void {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    this.metrics?.retries.inc({ name: this.name, controller: this.name });
    const perKey = backoffDelay(failures, { initialMs: this.options.baseDelayMs ?? 5, maxMs: this.options.maxDelayMs ?? 1_000_000 });
    this.addAfter(key, Math.max(perKey, this.bucketDelay()));
  }

  /** Clears the key's failure count (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times in a row this key has failed. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private bucketDelay(): number {
    const rate = this.options.retriesPerSecond ?? 10;
    const burst = this.options.retryBurst ?? 100;
    const now = performance.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / rate) * 1000;
  }

  private pump(): void {
    const controller = this.controller;
    if (!controller) return;
    while (this.active < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      this.active++;
      this.metrics?.activeWorkers.set({ controller: this.name }, this.active);
      this.metrics?.depth.set({ name: this.name, controller: this.name }, this.queue.length);
      const queuedSince = this.addedAt.get(key);
      this.addedAt.delete(key);
      if (queuedSince !== undefined) this.metrics?.queueDuration.observe({ name: this.name, controller: this.name }, (performance.now() - queuedSince) / 1000);
      void this.process(key, controller.signal);
    }
  }

  private async process(key: string, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    let outcome: ReconcileOutcome = 'success';
    try {
      const result = await this.options.reconcile(key, signal);
      this.forget(key);
      if (result?.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        outcome = 'requeue_after';
        this.finish(key);
        this.addAfter(key, result.requeueAfterMs);
        return;
      }
      this.finish(key);
    } catch (error) {
      outcome = 'error';
      this.metrics?.errors.inc({ controller: this.name });
      this.finish(key);
      if (signal.aborted) return;
      if (error instanceof PermanentError) {
        this.forget(key);
        this.log.error({ controller: this.name, key, error: describeError(error) }, 'reconcile failed permanently; not retrying until the key changes');
      } else if (error instanceof TemporaryError && error.retryAfterMs !== undefined) {
        this.metrics?.retries.inc({ name: this.name, controller: this.name });
        this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
        this.addAfter(key, error.retryAfterMs);
      } else {
        // Unclassified errors are presumed temporary, as controller-runtime does.
        this.log.warn({ controller: this.name, key, failures: this.numRequeues(key) + 1, error: describeError(error) }, 'reconcile failed; retrying with backoff');
        this.addRateLimited(key);
      }
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.metrics?.workDuration.observe({ name: this.name, controller: this.name }, seconds);
      this.metrics?.reconcileTime.observe({ controller: this.name }, seconds);
      this.metrics?.reconciles.inc({ controller: this.name, result: outcome });
    }
  }

  /** Ends a run: the key may be handed out again, at once if it was added during the run. */
  private finish(key: string): void {
    this.processing.delete(key);
    this.metrics?.activeWorkers.set({ controller: this.name }, this.active - 1);
    this.active--;
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.metrics?.depth.set({ name: this.name, controller: this.name }, this.queue.length);
    }
    if (this.active === 0 && this.drained) {
      this.drained();
      this.drained = undefined;
    }
    this.pump();
  }

}

function createMetrics(registry: Registry, name: string, concurrency: number) {
  const q = ['name', 'controller'] as const;
  gaugeIn(registry, 'controller_runtime_max_concurrent_reconciles', 'Maximum concurrent reconciles', ['controller']).set({ controller: name }, concurrency);
  return {
    depth: gaugeIn(registry, 'workqueue_depth', 'Current depth of the work queue', q),
    adds: counterIn(registry, 'workqueue_adds_total', 'Adds handled by the work queue', q),
    retries: counterIn(registry, 'workqueue_retries_total', 'Retries handled by the work queue', q),
    queueDuration: histogramIn(registry, 'workqueue_queue_duration_seconds', 'Seconds a key waits in the queue before it is reconciled', q, WORKQUEUE_BUCKETS),
    workDuration: histogramIn(registry, 'workqueue_work_duration_seconds', 'Seconds a reconcile takes', q, WORKQUEUE_BUCKETS),
    activeWorkers: gaugeIn(registry, 'controller_runtime_active_workers', 'Workers currently reconciling', ['controller']),
    reconciles: counterIn(registry, 'controller_runtime_reconcile_total', 'Reconciles per controller and result', ['controller', 'result']),
    errors: counterIn(registry, 'controller_runtime_reconcile_errors_total', 'Reconcile errors per controller', ['controller']),
    reconcileTime: histogramIn(registry, 'controller_runtime_reconcile_time_seconds', 'Reconcile time per controller', ['controller']),
  };
}
