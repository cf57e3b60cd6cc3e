// The background audit, as it runs inside the worker thread: it owns the pod and report informers,
// evaluates each pod against the policy snapshot the main thread sent, writes the controller's part of
// the pod's report through the ReportWriter, and deletes reports that lost their use. A work queue keyed
// by pod (`namespace/name`) makes it level-triggered: whatever changed — the pod, its report, its
// namespace's labels or LimitRanges, the policies, the hourly resync — the pod is simply evaluated again,
// and a write happens only when the report would change.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { FIELD_MANAGER_CONTROLLER, type ConcurrencyPolicy, type ConcurrencyReport, type ConcurrencyReportStatus } from '../../api/index.ts';
import {
  CONCURRENCY_REPORTS, Informer, PODS, ReportWriter, WorkQueue, canonicalJson, describeError, isConflict, isNotFound, splitKey,
  type KubeClient, type KubeLogger,
} from '../../kube/index.ts';
import type { PolicyAuditStats } from '../policy-status.ts';
import type { AuditEngine, CompiledSnapshot, LimitRangeObject, PodObject } from './engine.ts';
import type { AuditSettings, PassFigures } from './protocol.ts';
import { slimPod } from './slim.ts';
import { desiredAuditStatus, reportExpired, reportIsCurrent } from './report-status.ts';

export interface AuditorOptions {
  client: KubeClient;
  engine: AuditEngine;
  settings: AuditSettings;
  logger: KubeLogger;
  registry?: Registry;
  onSynced?: (pods: number, listMs: number) => void;
  onStats: (stats: [string, PolicyAuditStats][]) => void;
  onPass?: (figures: PassFigures) => void;
  now?: () => number;
}

/** A token bucket: report volume is what has taken etcd down for other policy engines. */
export class WriteBudget {
  private tokens: number;
  private at = performance.now();
  private readonly perSecond: number;
  private readonly burst: number;

  constructor(perSecond: number, burst: number) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
  }

  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
      this.at = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.perSecond) * 1000), undefined, signal ? { signal } : {});
    }
  }
}

interface PodAuditState {
  matched: readonly string[];
  violating: readonly string[];
}

interface Pass {
  reason: PassFigures['reason'];
  started: number;
  pods: number;
  evaluationMs: number;
  writes: Record<string, number>;
}

const IDLE_CHECK_MS = 100;
const STATS_MIN_INTERVAL_MS = 1_000;

function podChanged(pod: PodObject, old: PodObject): boolean {
  const a = pod.metadata;
  const b = old.metadata;
  return a.uid !== b.uid || a.generation !== b.generation || Boolean(a.deletionTimestamp) !== Boolean(b.deletionTimestamp)
    || pod.spec?.nodeName !== old.spec?.nodeName
    || canonicalJson(a.labels ?? {}) !== canonicalJson(b.labels ?? {})
    || canonicalJson(a.annotations ?? {}) !== canonicalJson(b.annotations ?? {});
}

export class Auditor {
  readonly pods: Informer<PodObject>;
  readonly reports: Informer<ConcurrencyReport>;
  private readonly options: AuditorOptions;
  private readonly settings: AuditSettings;
  private readonly log: KubeLogger;
  private readonly writer: ReportWriter;
  private readonly queue: WorkQueue;
  private readonly budget: WriteBudget;
  private readonly excluded: ReadonlySet<string>;
  private readonly now: () => number;
  private compiled: CompiledSnapshot | undefined;
  private policies: ConcurrencyPolicy[] | undefined;
  private namespaceLabels: Map<string, Record<string, string>> | undefined;
  private limitRanges: Map<string, LimitRangeObject[]> | undefined;
  private readonly podState = new Map<string, PodAuditState>();
  private pass: Pass | undefined;
  private completed: { generations: ReadonlyMap<string, number>; auditTime: string } | undefined;
  private statsDirty = false;
  private lastStatsAt = 0;
  private informersSynced = false;
  private started = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stopController = new AbortController();
  /** Report writes by outcome since start (created, updated, recreated, cleared, deleted-*). */
  readonly writeCounts: Record<string, number> = {};

  constructor(options: AuditorOptions) {
    this.options = options;
    this.settings = options.settings;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.excluded = new Set(options.settings.excludedNamespaces);
    this.writer = new ReportWriter({ client: options.client, fieldManager: FIELD_MANAGER_CONTROLLER, logger: options.logger });
    this.budget = new WriteBudget(options.settings.reportWritesPerSecond, options.settings.reportWriteBurst);
    const registry = options.registry ? { registry: options.registry } : {};
    // The excluded namespaces never reach this process: the API server filters them out of list and watch.
    const fieldSelector = [...this.excluded].map((ns) => `metadata.namespace!=${ns}`).join(',');
    this.pods = new Informer<PodObject>({
      client: options.client, resource: PODS, name: 'pods', ...(fieldSelector ? { fieldSelector } : {}), logger: options.logger, ...registry,
    });
    this.reports = new Informer<ConcurrencyReport>({
      client: options.client, resource: CONCURRENCY_REPORTS, name: 'concurrencyreports',
      ...(fieldSelector ? { fieldSelector } : {}), logger: options.logger, ...registry,
    });
    this.queue = new WorkQueue({
      name: 'audit', reconcile: (key, signal) => this.reconcile(key, signal),
      concurrency: options.settings.concurrency, logger: options.logger, ...registry,
    });
  }

  start(): void {
    const add = (key: string): void => { if (this.started) this.queue.add(key); };
    const podKey = (pod: { metadata: PodObject['metadata'] }): string => `${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}`;
    this.pods.on({
      add: (pod) => add(podKey(slimPod(pod))),
      update: (pod, old) => { if (podChanged(slimPod(pod), old)) add(podKey(pod)); },
      delete: (pod) => add(podKey(pod)),
    });
    this.reports.on({
      add: (report) => add(podKey(report)),
      update: (report) => add(podKey(report)),
      delete: (report) => {
        this.writer.forget(report.metadata.namespace ?? '', report.metadata.name ?? '');
        add(podKey(report));
      },
    });
    const listStarted = performance.now();
    this.pods.start();
    this.reports.start();
    void Promise.all([this.pods.whenSynced, this.reports.whenSynced]).then(() => {
      this.informersSynced = true;
      this.options.onSynced?.(this.pods.size, performance.now() - listStarted);
      this.maybeBegin();
    });
    this.timers.push(setInterval(() => this.checkIdle(), IDLE_CHECK_MS));
    this.timers.push(setInterval(() => { if (this.started) this.beginPass('resync'); }, this.settings.resyncMs));
    const sweepMs = Math.max(1_000, Math.min(this.settings.reportTtlMs / 4, 30_000));
    this.timers.push(setInterval(() => this.sweepExpired(), sweepMs));
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    this.stopController.abort(new Error('auditor stopped'));
    for (const timer of this.timers) clearInterval(timer);
    await this.queue.stop();
    await Promise.all([this.pods.stop(), this.reports.stop()]);
  }

  setPolicies(policies: ConcurrencyPolicy[]): void {
    this.policies = policies;
    this.compiled = this.options.engine.compile(policies, [...this.excluded]);
    if (this.started) this.beginPass('policies');
    else this.maybeBegin();
  }

  setNamespaces(namespaces: [string, Record<string, string>][]): void {
    const next = new Map(namespaces);
    const previous = this.namespaceLabels;
    this.namespaceLabels = next;
    if (!previous) {
      this.maybeBegin();
      return;
    }
    // Only namespaces whose labels changed (or that appeared) need their pods audited again.
    for (const [name, labels] of next) {
      const before = previous.get(name);
      if (!before || canonicalJson(before) !== canonicalJson(labels)) this.enqueueNamespace(name);
    }
  }

  setLimitRanges(limitRanges: LimitRangeObject[]): void {
    const next = new Map<string, LimitRangeObject[]>();
    for (const lr of limitRanges) {
      const namespace = lr.metadata.namespace ?? '';
      const list = next.get(namespace) ?? [];
      list.push(lr);
      next.set(namespace, list);
    }
    for (const list of next.values()) list.sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
    const previous = this.limitRanges;
    this.limitRanges = next;
    if (!previous) {
      this.maybeBegin();
      return;
    }
    const fingerprint = (list: LimitRangeObject[] | undefined): string => canonicalJson((list ?? []).map((lr) => [lr.metadata.name, lr.spec]));
    for (const namespace of new Set([...previous.keys(), ...next.keys()])) {
      if (fingerprint(previous.get(namespace)) !== fingerprint(next.get(namespace))) this.enqueueNamespace(namespace);
    }
  }

  /** Figures of the pass in progress (none: idle). */
  get passInProgress(): boolean {
    return this.pass !== undefined;
  }

  private maybeBegin(): void {
    if (this.started || !this.informersSynced || !this.compiled || !this.namespaceLabels || !this.limitRanges) return;
    this.started = true;
    this.queue.start();
    this.beginPass('startup');
  }

  private beginPass(reason: Pass['reason']): void {
    const keys = new Set([...this.pods.keys(), ...this.reports.keys()]);
    this.pass = { reason, started: performance.now(), pods: this.pods.size, evaluationMs: 0, writes: {} };
    for (const key of keys) this.queue.add(key);
  }

  private enqueueNamespace(namespace: string): void {
    if (!this.started) return;
    for (const pod of this.pods.list(namespace)) this.queue.add(`${namespace}/${pod.metadata.name ?? ''}`);
  }

  private checkIdle(): void {
    if (!this.started || this.queue.length > 0 || this.queue.inFlight > 0) return;
    const pass = this.pass;
    if (pass) {
      this.pass = undefined;
      this.completed = { generations: this.compiled!.generations, auditTime: new Date(this.now()).toISOString() };
      this.statsDirty = true;
      const figures: PassFigures = {
        reason: pass.reason, pods: pass.pods, durationMs: Math.round(performance.now() - pass.started),
        evaluationMs: Math.round(pass.evaluationMs), writes: pass.writes,
      };
      const memory = process.memoryUsage();
      // heapUsed is this worker's own V8 heap; rss is the whole process's.
      this.log.info({ ...figures, heapUsedMiB: Math.round(memory.heapUsed / 2 ** 20), rssMiB: Math.round(memory.rss / 2 ** 20) }, 'audit pass complete');
      this.options.onPass?.(figures);
    }
    const now = performance.now();
    if (this.statsDirty && this.completed && now - this.lastStatsAt >= STATS_MIN_INTERVAL_MS) {
      this.statsDirty = false;
      this.lastStatsAt = now;
      this.options.onStats(this.statistics());
    }
  }

  /** Per policy of the last completed pass: pods matched and pods with at least one of its findings. */
  statistics(): [string, PolicyAuditStats][] {
    const completed = this.completed;
    if (!completed) return [];
    const counts = new Map<string, { matched: number; violating: number }>();
    for (const name of completed.generations.keys()) counts.set(name, { matched: 0, violating: 0 });
    for (const state of this.podState.values()) {
      for (const name of state.matched) { const c = counts.get(name); if (c) c.matched++; }
      for (const name of state.violating) { const c = counts.get(name); if (c) c.violating++; }
    }
    return [...counts].map(([name, c]) => [name, {
      generation: completed.generations.get(name) ?? 0, matched: c.matched, violating: c.violating, auditTime: completed.auditTime,
    }]);
  }

  private sweepExpired(): void {
    if (!this.started) return;
    const now = this.now();
    for (const report of this.reports.list()) {
      const key = `${report.metadata.namespace ?? ''}/${report.metadata.name ?? ''}`;
      const matched = (this.podState.get(key)?.matched.length ?? 0) > 0;
      if (reportExpired(report, this.settings.reportsMode, matched, this.settings.reportTtlMs, now)) this.queue.add(key);
    }
  }

  private count(outcome: string): void {
    this.writeCounts[outcome] = (this.writeCounts[outcome] ?? 0) + 1;
    if (this.pass) this.pass.writes[outcome] = (this.pass.writes[outcome] ?? 0) + 1;
  }

  private setState(key: string, state: PodAuditState | undefined): void {
    const before = this.podState.get(key);
    if (!state) {
      if (before) { this.podState.delete(key); this.statsDirty = true; }
      return;
    }
    if (!before || canonicalJson(before) !== canonicalJson(state)) this.statsDirty = true;
    this.podState.set(key, state);
  }

  private async deleteReport(report: ConcurrencyReport, why: string, signal: AbortSignal): Promise<void> {
    await this.budget.take(signal);
    const deleted = await this.writer.deleteReport(report.metadata.namespace ?? '', report.metadata.name ?? '', report.metadata.uid ?? '');
    if (deleted) {
      this.count(`deleted-${why}`);
      this.log.info({ report: `${report.metadata.namespace}/${report.metadata.name}`, why }, 'report deleted');
    }
  }

  private async write(pod: PodObject, status: ConcurrencyReportStatus, signal: AbortSignal): Promise<void> {
    await this.budget.take(signal);
    const outcome = await this.writer.write({
      namespace: pod.metadata.namespace ?? '', name: pod.metadata.name ?? '', uid: pod.metadata.uid ?? '',
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
    }, status);
    this.count(outcome);
  }

  private async reconcile(key: string, signal: AbortSignal): Promise<void> {
    const { namespace = '' } = splitKey(key);
    if (this.excluded.has(namespace) || !this.compiled) return;
    const pod = this.pods.getByKey(key);
    let report = this.reports.getByKey(key);
    if (!pod) {
      this.setState(key, undefined);
      // The controller is the only deleter (the garbage collector follows the ownerReference too).
      if (report && this.pods.hasSynced) await this.deleteReport(report, 'pod-gone', signal);
      return;
    }
    if (pod.metadata.deletionTimestamp) return;
    if (report && report.spec.podUID !== pod.metadata.uid) {
      // Left by an earlier pod of the same name (StatefulSet web-0): never let its status describe this one.
      await this.deleteReport(report, 'earlier-pod', signal);
      report = undefined;
    }
    const started = performance.now();
    const evaluation = this.options.engine.evaluate(
      this.compiled, pod, this.namespaceLabels?.get(namespace) ?? {}, this.limitRanges?.get(namespace) ?? [],
    );
    if (this.pass) this.pass.evaluationMs += performance.now() - started;
    const violating = [...new Set(evaluation.findings.flatMap((f) => f.policies))].sort();
    this.setState(key, { matched: [...evaluation.matched].sort(), violating });
    const now = this.now();
    try {
      const matched = evaluation.matched.length > 0;
      // A pod no policy matches gets no report; one it already has (the agent's, or ours from before the
      // policy changed) says so, with no findings: its TTL then counts from this moment, not from before.
      const wanted = report !== undefined || (matched && (evaluation.findings.length > 0 || this.settings.reportsMode === 'all'));
      if (!wanted) return;
      const desired = desiredAuditStatus(evaluation.findings, evaluation.matched.length, report, new Date(now));
      if (report && reportIsCurrent(report, desired, pod.spec?.nodeName)) {
        if (reportExpired(report, this.settings.reportsMode, matched, this.settings.reportTtlMs, now)) await this.deleteReport(report, 'ttl', signal);
        return;
      }
      await this.write(pod, desired, signal);
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) {
        this.log.debug({ pod: key, error: describeError(error) }, 'report changed under us; the informer event brings it back');
      }
      throw error;
    }
  }
}
