// An informer that does not die: list (paginated) then watch, for ever, under supervision.
//
// What client-node's informer gets wrong and this one does not (notes/typescript-stack.md §2):
// - any error other than 410 stops it for good → here every failure restarts the watch after a
//   jittered exponential backoff, resuming from the last resourceVersion;
// - a half-open connection hangs it → every watch has an inactivity deadline; bookmarks (and a server-side
//   timeout shorter than that deadline) keep a healthy but quiet watch from tripping it;
// - a throwing handler becomes an unhandledRejection → handlers run in try/catch, sync or async;
// - no synced signal, no old object on update → both here.
// 410 Gone (compacted resourceVersion) drops the resourceVersion and relists; the relist is diffed
// against the cache so vanished objects are delivered as deletes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { ApiError, WatchStalledError, isGone, objectKey, type KubeClient, type KubeObject, type KubeStatus } from './client.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { describeError, silentLogger, type KubeLogger } from './logger.ts';
import { counterIn, gaugeIn } from './metrics.ts';
import type { ResourceType } from './resources.ts';

export interface InformerHandlers<T> {
  add?: (object: T) => unknown;
  update?: (object: T, old: T) => unknown;
  delete?: (object: T) => unknown;
}

export type InformerLifecycleEvent = 'connected' | 'relisted' | 'stalled' | 'restarted';

export interface InformerOptions {
  client: KubeClient;
  resource: ResourceType;
  /** A bounded metric label, e.g. `pods`; one per informer kind, never an object name. */
  name: string;
  /** Omit to watch every namespace (or a cluster-scoped kind). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Initial list page size (limit/continue). */
  pageSize?: number;
  /** No bytes for this long → the connection is presumed dead, aborted and re-watched. */
  watchIdleTimeoutMs?: number;
  /** Restart backoff after a failed list or watch. */
  backoff?: BackoffOptions;
  registry?: Registry;
  logger?: KubeLogger;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };
// The API server sends a watcher a bookmark about once a minute, and one just before its server-side
// timeout; the idle deadline must exceed the first and the server timeout must undercut the deadline.
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;
/** A watch that lived this long (or until its server-side timeout) was healthy; its end is no failure. */
const HEALTHY_WATCH_MS = 10_000;

function status(object: KubeObject | KubeStatus): KubeStatus {
  return object as KubeStatus;
}

function stripped<T extends KubeObject>(object: T): T {
  // managedFields are often half of an object's size and nothing of ours reads them.
  if (object.metadata.managedFields) delete object.metadata.managedFields;
  return object;
}

export class Informer<T extends KubeObject> {
  readonly name: string;
  private readonly options: InformerOptions;
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly log: KubeLogger;
  private readonly watchIdleTimeoutMs: number;
  private resourceVersion: string | undefined;
  private running: { controller: AbortController; loop: Promise<void> } | undefined;
  private markSynced!: () => void;
  private synced = false;
  /** Resolves once the first full list is in the cache (and its add events were delivered). */
  readonly whenSynced: Promise<void>;
  private readonly metrics: {
    lifecycle: ReturnType<typeof counterIn<'informer' | 'event'>>;
    handlerErrors: ReturnType<typeof counterIn<'informer'>>;
    events: ReturnType<typeof counterIn<'informer' | 'type'>>;
    objects: ReturnType<typeof gaugeIn<'informer'>>;
    syncedGauge: ReturnType<typeof gaugeIn<'informer'>>;
    lastEvent: ReturnType<typeof gaugeIn<'informer'>>;
  } | undefined;

  constructor(options: InformerOptions) {
    this.options = options;
    this.name = options.name;
    this.log = options.logger ?? silentLogger;
    this.watchIdleTimeoutMs = options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    this.whenSynced = new Promise<void>((resolve) => { this.markSynced = resolve; });
    const registry = options.registry;
    if (registry) {
      this.metrics = {
        lifecycle: counterIn(registry, 'concurrency_guard_informer_lifecycle_events_total',
          'Informer lifecycle: connected (watch open), relisted (full list), stalled (no bytes within the watch idle timeout), restarted (after a failure)',
          ['informer', 'event']),
        handlerErrors: counterIn(registry, 'concurrency_guard_informer_handler_errors_total', 'Event handlers that threw or rejected', ['informer']),
        events: counterIn(registry, 'concurrency_guard_informer_events_total', 'Events delivered to handlers', ['informer', 'type']),
        objects: gaugeIn(registry, 'concurrency_guard_informer_objects', 'Objects in the informer cache', ['informer']),
        syncedGauge: gaugeIn(registry, 'concurrency_guard_informer_synced', '1 once the initial list is in the cache', ['informer']),
        lastEvent: gaugeIn(registry, 'concurrency_guard_informer_last_event_timestamp_seconds', 'When the last watch event or bookmark arrived', ['informer']),
      };
      this.metrics.syncedGauge.set({ informer: this.name }, 0);
      for (const event of ['connected', 'relisted', 'stalled', 'restarted'] as const) this.metrics.lifecycle.inc({ informer: this.name, event }, 0);
    }
  }

  /** True once the first full list is in the cache. */
  get hasSynced(): boolean {
    return this.synced;
  }

  get lastResourceVersion(): string | undefined {
    return this.resourceVersion;
  }

  /** Registers handlers; returns a function that removes them. */
  on(handlers: InformerHandlers<T>): () => void {
    this.handlers.push(handlers);
    return () => {
      const index = this.handlers.indexOf(handlers);
      if (index >= 0) this.handlers.splice(index, 1);
    };
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.cache.get(key);
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** The cached objects themselves: read them, never mutate them (copy first). */
  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  get size(): number {
    return this.cache.size;
  }

  start(): void {
    if (this.running) return;
    const controller = new AbortController();
    this.running = { controller, loop: this.supervise(controller.signal) };
  }

  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    running.controller.abort(new Error(`informer ${this.name} stopped`));
    await running.loop;
  }

  private lifecycle(event: InformerLifecycleEvent): void {
    this.metrics?.lifecycle.inc({ informer: this.name, event });
  }

  /** The loop that never ends until stop(): list when needed, watch, and on any failure back off and go on. */
  private async supervise(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let goneRightAfterList = false;
    while (!signal.aborted) {
      let listedNow = false;
      try {
        if (this.resourceVersion === undefined) {
          await this.relist(signal);
          listedNow = true;
        }
        const watched = await this.watchOnce(signal);
        // A clean close (our server-side timeout, API server shutting down) resumes at once, unless
        // watches keep ending early with nothing in them: then the server is refusing us, so back off.
        if (watched.events > 0 || watched.durationMs >= Math.min(HEALTHY_WATCH_MS, watched.timeoutSeconds * 1000 - 500)) {
          failures = 0;
          continue;
        }
        failures++;
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) {
          // The resourceVersion we hold was compacted away: only a fresh list can catch up. At once,
          // unless the previous relist's own resourceVersion was already gone (then back off, do not spin).
          this.log.info({ informer: this.name }, 'resourceVersion expired (410 Gone); relisting');
          this.resourceVersion = undefined;
          const spinning = listedNow && goneRightAfterList;
          goneRightAfterList = listedNow;
          if (!spinning) continue;
        }
        goneRightAfterList = false;
        if (error instanceof WatchStalledError) this.lifecycle('stalled');
        failures++;
        this.log.warn({ informer: this.name, failures, error: describeError(error) }, 'informer list/watch failed; restarting after backoff');
      }
      const delay = backoffDelay(failures, this.options.backoff ?? DEFAULT_BACKOFF);
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        break;
      }
      this.lifecycle('restarted');
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const { client, resource, namespace, labelSelector, fieldSelector } = this.options;
    const list = await client.list<T>(resource, {
      ...(namespace ? { namespace } : {}),
      ...(labelSelector ? { labelSelector } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
      pageSize: this.options.pageSize ?? 500,
      signal,
    });
    if (signal.aborted) return;
    const fresh = new Map<string, T>();
    for (const item of list.items) fresh.set(objectKey(item), stripped(item));
    const previous = new Map(this.cache);
    this.cache.clear();
    for (const [key, object] of fresh) this.cache.set(key, object);
    for (const [key, object] of fresh) {
      const old = previous.get(key);
      if (!old) this.dispatch('add', object);
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion || old.metadata.uid !== object.metadata.uid) {
        this.dispatch('update', object, old);
      }
    }
    for (const [key, old] of previous) if (!fresh.has(key)) this.dispatch('delete', old);
    this.resourceVersion = list.metadata.resourceVersion;
    this.metrics?.objects.set({ informer: this.name }, this.cache.size);
    this.lifecycle('relisted');
    if (!this.synced) {
      this.synced = true;
      this.metrics?.syncedGauge.set({ informer: this.name }, 1);
      this.markSynced();
    }
  }

  private async watchOnce(signal: AbortSignal): Promise<{ events: number; durationMs: number; timeoutSeconds: number }> {
    const { client, resource, namespace, labelSelector, fieldSelector } = this.options;
    const started = Date.now();
    // Below the idle deadline so a quiet but healthy watch ends cleanly (with a bookmark just before)
    // instead of being mistaken for a dead one; randomised so many informers do not reconnect together.
    const idleSeconds = this.watchIdleTimeoutMs / 1000;
    const timeoutSeconds = Math.max(1, Math.floor(idleSeconds * (0.5 + 0.3 * Math.random())));
    let events = 0;
    const stream = client.watch<T>(resource, {
      ...(namespace ? { namespace } : {}),
      ...(labelSelector ? { labelSelector } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
      ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
      allowWatchBookmarks: true,
      timeoutSeconds,
      idleTimeoutMs: this.watchIdleTimeoutMs,
      signal,
      onConnected: () => this.lifecycle('connected'),
    });
    for await (const event of stream) {
      events++;
      this.metrics?.lastEvent.set({ informer: this.name }, Date.now() / 1000);
      if (event.type === 'ERROR') {
        const failure = status(event.object);
        throw new ApiError(failure.code ?? 500, failure, 'WATCH', resource.plural);
      }
      const object = stripped(event.object as T);
      const rv = object.metadata.resourceVersion;
      if (event.type === 'BOOKMARK') {
        if (rv) this.resourceVersion = rv;
        continue;
      }
      this.apply(event.type, object);
      if (rv) this.resourceVersion = rv;
    }
    return { events, durationMs: Date.now() - started, timeoutSeconds };
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void {
    const key = objectKey(object);
    const old = this.cache.get(key);
    if (type === 'DELETED') {
      if (!old) return;
      this.cache.delete(key);
      this.metrics?.objects.set({ informer: this.name }, this.cache.size);
      this.dispatch('delete', object);
      return;
    }
    if (old && old.metadata.resourceVersion === object.metadata.resourceVersion) return;
    this.cache.set(key, object);
    this.metrics?.objects.set({ informer: this.name }, this.cache.size);
    if (old) this.dispatch('update', object, old);
    else this.dispatch('add', object);
  }

  private dispatch(type: 'add' | 'delete', object: T): void;
  private dispatch(type: 'update', object: T, old: T): void;
  private dispatch(type: 'add' | 'update' | 'delete', object: T, old?: T): void {
    this.metrics?.events.inc({ informer: this.name, type });
    for (const handlers of this.handlers) {
      try {
        let result: unknown;
        if (type === 'add') result = handlers.add?.(object);
        else if (type === 'update') result = handlers.update?.(object, old!);
        else result = handlers.delete?.(object);
        if (result instanceof Promise) result.catch((error: unknown) => this.handlerFailed(type, error));
      } catch (error) {
        this.handlerFailed(type, error);
      }
    }
  }

  private handlerFailed(type: string, error: unknown): void {
    this.metrics?.handlerErrors.inc({ informer: this.name });
    this.log.error({ informer: this.name, event: type, error: describeError(error) }, 'informer event handler failed');
  }
}
