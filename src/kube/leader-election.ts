// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a candidate takes the Lease
// when it is free or when its holder has not renewed it for leaseDuration (timed on the candidate's own
// clock from when it last saw the record change, so clock skew between machines does not matter); the
// leader renews every retryPeriod and steps down when it has not renewed for renewDeadline, which is
// shorter than leaseDuration, so it stops leader-only work before anyone else may start it.
//
// Each term gets its own AbortSignal: aborted at once when the Lease is seen taken, when the renew
// deadline passes (even while a renew request hangs), or on release. Release (abort the signal given to
// run(), e.g. on SIGTERM) clears holderIdentity and shortens the duration so a candidate takes over on its
// next try instead of waiting out the lease.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import type { ObjectMeta } from '../api/index.ts';
import { isConflict, isNotFound, type KubeClient } from './client.ts';
import { describeError, silentLogger, type KubeLogger } from './logger.ts';
import { counterIn, gaugeIn } from './metrics.ts';
import { LEASES, resourcePath } from './resources.ts';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: ObjectMeta;
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  /** The Lease's name; also the metric label (one per elector, bounded). */
  name: string;
  /** Unique per process: usually the pod name (plus a random suffix). */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Called at the start of each term with that term's signal. */
  onStartedLeading?: (signal: AbortSignal) => void;
  onStoppedLeading?: () => void;
  /** Called when the observed holder changes (including to ''). */
  onNewLeader?: (identity: string) => void;
  registry?: Registry;
  logger?: KubeLogger;
}

/** A metav1.MicroTime: RFC 3339 with exactly six fractional digits (the API server's parser wants six). */
export function microTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly identity: string;
  private readonly options: LeaderElectorOptions;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: KubeLogger;
  /** The last Lease read or written, and when (on our monotonic clock) its spec last changed. */
  private observed: Lease | undefined;
  private observedAt = 0;
  /** When the observed holder's lease runs out on our clock, unless it renews first. */
  private observedExpiresAt = 0;
  private term: AbortController | undefined;
  private leadingWaiters: ((signal: AbortSignal) => void)[] = [];
  private readonly metrics: {
    leader: ReturnType<typeof gaugeIn<'name'>>;
    transitions: ReturnType<typeof counterIn<'name' | 'event'>>;
  } | undefined;

  constructor(options: LeaderElectorOptions) {
    this.options = options;
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 6_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 4_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 1_000;
    if (!(this.retryPeriodMs < this.renewDeadlineMs && this.renewDeadlineMs < this.leaseDurationMs)) {
      throw new Error('leader election needs retryPeriod < renewDeadline < leaseDuration');
    }
    if (this.leaseDurationMs % 1000 !== 0) throw new Error('leaseDuration must be whole seconds (Lease.spec.leaseDurationSeconds)');
    this.log = options.logger ?? silentLogger;
    if (options.registry) {
      // client-go's metric name, so dashboards built for Go controllers work.
      this.metrics = {
        leader: gaugeIn(options.registry, 'leader_election_master_status', '1 while this process holds the lease', ['name']),
        transitions: counterIn(options.registry, 'concurrency_guard_leader_election_events_total', 'Terms started and ended (lost, renew deadline passed, released)', ['name', 'event']),
      };
      this.metrics.leader.set({ name: options.name }, 0);
    }
  }

  get isLeader(): boolean {
    return this.term !== undefined && !this.term.signal.aborted;
  }

  /** The current term's signal while leading; aborted the moment the term ends. */
  get leaderSignal(): AbortSignal | undefined {
    return this.isLeader ? this.term!.signal : undefined;
  }

  /** The holder as last observed ('' when free). */
  get observedLeader(): string | undefined {
    return this.observed?.spec?.holderIdentity ?? undefined;
  }

  /** Resolves with the term's signal when this process next becomes leader (at once if it is). */
  whenLeading(): Promise<AbortSignal> {
    const current = this.leaderSignal;
    if (current) return Promise.resolve(current);
    return new Promise((resolve) => this.leadingWaiters.push(resolve));
  }

  /**
   * Campaigns and leads until `signal` aborts, then releases the Lease if held and returns. Terms lost
   * along the way are followed by a new campaign.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const acquired = await this.acquire(signal);
      if (!acquired) break;
      await this.lead(signal);
    }
    await this.release();
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(this.retryPeriodMs)) {
        this.startTerm();
        return true;
      }
      // Try again after the retry period, or right when the holder's lease runs out if that is sooner:
      // polling alone would add up to a whole retry period to every handover after a crash.
      const untilExpiry = this.observedExpiresAt - performance.now();
      const wait = Math.min(this.retryPeriodMs * (1 + 0.2 * Math.random()), Math.max(10, untilExpiry + 10));
      if (!(await this.pause(wait, signal))) return false;
    }
    return false;
  }

  private startTerm(): void {
    this.term = new AbortController();
    const termSignal = this.term.signal;
    this.metrics?.leader.set({ name: this.options.name }, 1);
    this.metrics?.transitions.inc({ name: this.options.name, event: 'started' });
    this.log.info({ lease: this.options.name, identity: this.identity }, 'became leader');
    for (const waiter of this.leadingWaiters.splice(0)) waiter(termSignal);
    try {
      this.options.onStartedLeading?.(termSignal);
    } catch (error) {
      this.log.error({ error: describeError(error) }, 'onStartedLeading threw');
    }
  }

  private endTerm(reason: 'lost' | 'renew-deadline' | 'released'): void {
    const term = this.term;
    if (!term || term.signal.aborted) return;
    term.abort(new Error(`leadership ended: ${reason}`));
    this.metrics?.leader.set({ name: this.options.name }, 0);
    this.metrics?.transitions.inc({ name: this.options.name, event: reason });
    this.log.warn({ lease: this.options.name, identity: this.identity, reason }, 'stopped leading');
    try {
      this.options.onStoppedLeading?.();
    } catch (error) {
      this.log.error({ error: describeError(error) }, 'onStoppedLeading threw');
    }
  }

  /** Renews every retryPeriod until the term ends: lost, deadline passed, or run() told to stop. */
  private async lead(signal: AbortSignal): Promise<void> {
    const term = this.term!;
    let lastRenew = performance.now();
    // Fires even when a renew request hangs: the deadline is a promise to the next leader.
    let deadline = setTimeout(() => this.endTerm('renew-deadline'), this.renewDeadlineMs);
    try {
      while (!signal.aborted && !term.signal.aborted) {
        if (!(await this.pause(this.retryPeriodMs, signal, term.signal))) break;
        const remaining = this.renewDeadlineMs - (performance.now() - lastRenew);
        if (remaining <= 0) break;
        if (await this.tryAcquireOrRenew(Math.min(this.retryPeriodMs, remaining))) {
          if (term.signal.aborted) break;
          lastRenew = performance.now();
          clearTimeout(deadline);
          deadline = setTimeout(() => this.endTerm('renew-deadline'), this.renewDeadlineMs);
        } else if (this.observedLeader !== this.identity && this.observed !== undefined) {
          this.endTerm('lost');
        }
      }
    } finally {
      clearTimeout(deadline);
    }
    if (!signal.aborted) this.endTerm(term.signal.aborted ? 'renew-deadline' : 'lost');
  }

  /** client-go's tryAcquireOrRenew: one read (skipped when renewing our own fresh record) and one write. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { client, namespace, name } = this.options;
    try {
      const nowMs = Date.now();
      // One attempt must not outlive the renew deadline: a hung request would otherwise hold the loop.
      const requestSignal = AbortSignal.timeout(Math.max(100, Math.ceil(timeoutMs)));
      const ours: LeaseSpec = {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseDurationMs / 1000,
        renewTime: microTime(nowMs),
        acquireTime: microTime(nowMs),
        leaseTransitions: 0,
      };
      // Fast path: we hold it and nobody else wrote since our last write → update without reading.
      if (this.isLeader && this.observed?.spec?.holderIdentity === this.identity) {
        try {
          const renewed = await client.request<Lease>({
            method: 'PUT', path: resourcePath(LEASES, namespace, name), signal: requestSignal,
            body: { ...this.observed, spec: { ...this.observed.spec, renewTime: ours.renewTime } },
          });
          this.observe(renewed);
          return true;
        } catch (error) {
          if (!isConflict(error)) throw error;
          // Someone else wrote: fall through to the full read-and-decide.
        }
      }
      let current: Lease;
      try {
        current = await client.request<Lease>({ method: 'GET', path: resourcePath(LEASES, namespace, name), signal: requestSignal });
      } catch (error) {
        if (!isNotFound(error)) throw error;
        const created = await client.request<Lease>({
          method: 'POST', path: resourcePath(LEASES, namespace), signal: requestSignal,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: ours },
        });
        this.observe(created);
        return true;
      }
      this.observe(current);
      const spec = current.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
      this.observedExpiresAt = this.observedAt + durationMs;
      if (holder !== '' && holder !== this.identity && performance.now() < this.observedExpiresAt) return false;
      const next: LeaseSpec = holder === this.identity
        ? { ...spec, ...ours, acquireTime: spec.acquireTime ?? ours.acquireTime, leaseTransitions: spec.leaseTransitions ?? 0 }
        : { ...ours, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
      const written = await client.request<Lease>({
        method: 'PUT', path: resourcePath(LEASES, namespace, name), signal: requestSignal,
        body: { ...current, spec: next },
      });
      this.observe(written);
      return true;
    } catch (error) {
      if (!isConflict(error)) this.log.warn({ lease: name, error: describeError(error) }, 'lease read or write failed');
      return false;
    }
  }

  private observe(lease: Lease): void {
    const before = this.observed?.spec;
    const after = lease.spec;
    const changed = !before || before.holderIdentity !== after?.holderIdentity || before.renewTime !== after?.renewTime
      || before.leaseDurationSeconds !== after?.leaseDurationSeconds;
    if (changed) this.observedAt = performance.now();
    if ((before?.holderIdentity ?? '') !== (after?.holderIdentity ?? '')) {
      try {
        this.options.onNewLeader?.(after?.holderIdentity ?? '');
      } catch (error) {
        this.log.error({ error: describeError(error) }, 'onNewLeader threw');
      }
    }
    delete lease.metadata.managedFields;
    this.observed = lease;
  }

  /** If we hold the Lease: end the term, then clear the holder so a candidate takes over on its next try. */
  async release(): Promise<void> {
    const wasLeader = this.isLeader;
    this.endTerm('released');
    this.term = undefined;
    if (!wasLeader || this.observed?.spec?.holderIdentity !== this.identity) return;
    const now = microTime(Date.now());
    try {
      const released = await this.options.client.request<Lease>({
        method: 'PUT', path: resourcePath(LEASES, this.options.namespace, this.options.name),
        timeoutMs: this.renewDeadlineMs,
        body: {
          ...this.observed,
          spec: { leaseDurationSeconds: 1, renewTime: now, acquireTime: now, leaseTransitions: this.observed.spec.leaseTransitions ?? 0 },
        },
      });
      this.observe(released);
    } catch (error) {
      // Not fatal: the Lease then simply expires after leaseDuration.
      this.log.warn({ lease: this.options.name, error: describeError(error) }, 'could not release the lease');
    }
  }

  /** Sleeps; false when `signal` (or `alsoStop`) aborted meanwhile. */
  private async pause(ms: number, signal: AbortSignal, alsoStop?: AbortSignal): Promise<boolean> {
    const combined = alsoStop ? AbortSignal.any([signal, alsoStop]) : signal;
    try {
      await sleep(ms, undefined, { signal: combined });
      return true;
    } catch {
      return false;
    }
  }
}

/** An AbortSignal that aborts on the first of these process signals (SIGTERM from the kubelet). */
export function abortOnProcessSignals(signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): AbortSignal {
  const controller = new AbortController();
  for (const name of signals) process.once(name, () => controller.abort(new Error(`received ${name}`)));
  return controller.signal;
}
