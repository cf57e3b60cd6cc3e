// The node agent at run time: this node's pods from a watch (fieldSelector spec.nodeName), policies and
// namespaces from informers, and every `interval` one tick:
//   1. the synchronous scan (scan.ts: cgroups → processes → fds, threads, limits, pids chain, CPU);
//   2. per process identity, once: Go build info (the 10000-thread cap applies to Go processes only),
//      and for Go processes the affinity CPU count and — only when the pod spec does not say —
//      GOMAXPROCS/GODEBUG from environ;
//   3. per pod: the matching policies (src/policy's selectors) and their strictest thresholds, the
//      pressure (limits re-read before a level goes up), GOMAXPROCS against the leaf quota, crash
//      classes when a container's restartCount rose;
//   4. per netns (one pid per pod): the TcpExt counters, rates over the last minute; only when an
//      overflow counter moved since the last tick, the listeners (asynchronously, after the scan);
//      the node's own netns (hostNetwork pods) goes to metrics only, never onto a pod's report;
//   5. reports (report.ts decides when) through the report writer, an Event when a pod turns Critical,
//      and metrics.
// Pods in kube-system, kube-node-lease and the agent's own namespace are not scanned at all; pods that
// no policy matches are scanned for metrics but get no report.
// Privacy: no log line, report or metric carries a path, a command line or an environment value
// other than GOMAXPROCS/GODEBUG; errors are logged by code, never by message (fs messages hold paths).
import http from 'node:http';
import os from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type {
  ConcurrencyPolicy,
  ConcurrencyReport,
  CrashRuntime,
  PressureLevel,
  ReportCondition,
} from '../api/v1alpha1.ts';
import { FIELD_MANAGER_NODE_AGENT, PRESSURE_RANK, excludedNamespaces } from '../api/v1alpha1.ts';
import {
  ApiError,
  CONCURRENCY_POLICIES,
  CONCURRENCY_REPORTS,
  createClientFor,
  EventRecorder,
  Informer,
  NAMESPACES,
  PODS,
  ReportWriter,
  type KubeClient,
  type KubeObject,
} from '../kube/index.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerScrape, closeServer, createLogger, listen, whenAborted, type Logger } from '../runtime/index.ts';
import { cgroupPodUID, type QosClass } from './attribution/kubelet-naming.ts';
import { identityKey } from './attribution/process-identity.ts';
import { classifyCrash } from './crash.ts';
import { effectiveGomaxprocs, goRuntime } from './gomaxprocs.ts';
import { AgentMetrics } from './metrics.ts';
import { policyMatcher, specGoEnvironment, type PolicyMatcher } from './pod-spec.ts';
import {
  listenQueueVerdict,
  NetnsHistory,
  netnsEntries,
  type ListenQueueVerdict,
  type NetnsSample,
  type PodNetns,
} from './network.ts';
import { PodHistory, strictestThresholds, type PodPressure, type ResolvedThresholds, type TrendOptions } from './pressure.ts';
import { readGoEnvironment, type GoEnvironment } from './readers/environ.ts';
import { GoBuildInfoCache, type GoBuildInfo } from './readers/go-buildinfo.ts';
import { readListeners, type NetnsListeners } from './readers/listeners.ts';
import { readNetnsCounters, readNetnsIdentity } from './readers/netstat.ts';
import { readPreviousLogSignature } from './readers/pod-logs.ts';
import { ScratchReader } from './readers/proc-file.ts';
import { readProcStatus } from './readers/proc-status.ts';
import {
  buildRuntime,
  buildSummary,
  conditionDrafts,
  conditionStatuses,
  runtimeLevel,
  summaryBands,
  withTransitionTimes,
  writeDecision,
  type PodRuntimeInputs,
  type WrittenState,
} from './report.ts';
import { evaluatePodWithFreshLimits, Scanner, type PodFigures, type PodTarget, type TickFigures } from './scan.ts';

/** What `concurrency-guard agent` passes in; the first block mirrors the CLI's flags (src/cli.ts AgentOptions). */
export interface RunAgentOptions {
  nodeName: string;
  /** The operator's own namespace: never scanned. */
  namespace: string;
  procRoot: string;
  cgroupRoot: string;
  podLogRoot: string;
  /** Tick period, milliseconds. */
  interval: number;
  reports: 'problems' | 'all';
  /** Read listen backlogs and somaxconn inside pod netns (CAP_SYS_ADMIN). */
  enterNetns: boolean;
  /** 0 picks a free port (see onListening). */
  metricsPort: number;
  healthPort: number;
  kubeconfig?: string;
  context?: string;

  /** Default 0.0.0.0. */
  host?: string;
  /** Default: JSON lines on stderr. */
  log?: Logger;
  /** Default: a new Registry with Node's default metrics. */
  registry?: Registry;
  /** Default: built from kubeconfig/context, else in-cluster. */
  client?: KubeClient;
  /** Least time between two writes of a pod's report for band crossings alone; default 60 s. */
  minWriteIntervalMs?: number;
  /** A report is rewritten with fresh figures after this long even without a change; default 10 min. */
  refreshIntervalMs?: number;
  /** A classified crash keeps the pod at Warning this long; default 10 min. */
  crashWarningMs?: number;
  /** Listen-queue rates are over this window; default 60 s. */
  listenWindowMs?: number;
  /** fd/thread growth windows; default pressure.ts DEFAULT_TREND (growth after a minute of samples). */
  trend?: TrendOptions;
  onListening?: (ports: { metricsPort: number; healthPort: number }) => void;
  /** Called after every tick (tests and benchmarks). */
  onTick?: (tick: AgentTickResult) => void;
}

export interface AgentTickResult {
  time: number;
  pods: number;
  processes: number;
  writes: number;
  durationMs: number;
}

// ---- the Kubernetes objects read (only the fields used) ----

interface ContainerStatusObject {
  name: string;
  containerID?: string;
  restartCount?: number;
  lastState?: { terminated?: { exitCode?: number; reason?: string; finishedAt?: string } };
}

export interface AgentPod extends KubeObject {
  spec?: { nodeName?: string; hostNetwork?: boolean; containers?: unknown[]; resources?: { limits?: Record<string, unknown> } };
  status?: { phase?: string; qosClass?: string; containerStatuses?: ContainerStatusObject[] };
}

interface NamespaceObject extends KubeObject {
  metadata: KubeObject['metadata'];
}

const QOS: ReadonlySet<string> = new Set(['Guaranteed', 'Burstable', 'BestEffort']);

// ---- per process and per pod memory ----

interface ProcessInfo {
  go: GoBuildInfo | null | undefined;
  affinityCpus?: number;
  /** Read from environ only when the pod spec did not settle GOMAXPROCS/GODEBUG. */
  environment?: GoEnvironment | null;
  netns?: string | null;
  seen: number;
}

interface PodState {
  history: PodHistory;
  levels: { fileDescriptors?: PressureLevel; threads?: PressureLevel };
  restartCounts: Map<string, number>;
  lastCrash?: CrashRuntime;
  crashSeenAt?: number;
  crashKey: string;
  level: PressureLevel;
  /** Ticks this pod was scanned in: the first only primes counters (no CPU share, rates or growth yet). */
  ticks: number;
  written?: WrittenState;
  conditions?: ReportCondition[];
  /** GOMAXPROCS/GODEBUG per container as the spec settles them, for one resourceVersion of the pod. */
  specEnvironment?: { resourceVersion: string | undefined; byContainer: Map<string, GoEnvironment> };
}

/** An error as a short code: fs messages carry paths and API messages carry object names enough. */
function errorCode(error: unknown): string {
  if (error instanceof ApiError) {
    // The fields the API server rejected, by name (never their values).
    const fields = error.body?.details?.causes?.map((c) => c.field).filter((f): f is string => typeof f === 'string') ?? [];
    return `api-${error.status}${fields.length > 0 ? ` ${fields.join(',')}` : ''}`;
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'unknown';
}

export class NodeAgent {
  readonly options: RunAgentOptions;
  readonly scanner: Scanner;
  readonly metrics: AgentMetrics;
  readonly pods: Informer<AgentPod>;
  readonly policies: Informer<ConcurrencyPolicy>;
  readonly namespaces: Informer<NamespaceObject>;
  readonly reports: Informer<ConcurrencyReport>;
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly writer: ReportWriter;
  private readonly excluded: ReadonlySet<string>;
  private readonly reader = new ScratchReader();
  private readonly goInfo = new GoBuildInfoCache();
  private readonly processInfo = new Map<string, ProcessInfo>();
  private readonly podState = new Map<string, PodState>();
  private readonly netnsHistory: NetnsHistory;
  /** Last listener read per netns key, kept while its counters keep moving. */
  private readonly listeners = new Map<string, NetnsListeners>();
  private readonly nodeNetns: string | undefined;
  private matchers: PolicyMatcher[] | undefined;
  private generation = 0;
  ticks = 0;

  private readonly events: EventRecorder;

  constructor(options: RunAgentOptions, client: KubeClient, log: Logger, registry: Registry) {
    this.options = options;
    this.client = client;
    this.log = log;
    this.excluded = new Set(excludedNamespaces(options.namespace));
    this.scanner = new Scanner({ procRoot: options.procRoot, cgroupRoot: options.cgroupRoot });
    this.metrics = new AgentMetrics(registry);
    this.writer = new ReportWriter({ client, fieldManager: FIELD_MANAGER_NODE_AGENT, logger: log });
    this.events = new EventRecorder({
      client, controller: 'concurrencyguard.io/node-agent', action: 'Scan', instance: `concurrency-guard-node-agent-${options.nodeName}`, logger: log,
    });
    this.netnsHistory = new NetnsHistory(options.listenWindowMs ?? 60_000);
    this.nodeNetns = readNetnsIdentity(options.procRoot, process.pid);
    const common = { client, registry, logger: log };
    const onNode = `spec.nodeName=${options.nodeName}`;
    this.pods = new Informer<AgentPod>({ ...common, resource: PODS, name: 'pods', fieldSelector: onNode });
    this.policies = new Informer<ConcurrencyPolicy>({ ...common, resource: CONCURRENCY_POLICIES, name: 'concurrencypolicies' });
    this.namespaces = new Informer<NamespaceObject>({ ...common, resource: NAMESPACES, name: 'namespaces' });
    this.reports = new Informer<ConcurrencyReport>({ ...common, resource: CONCURRENCY_REPORTS, name: 'concurrencyreports', fieldSelector: onNode });
    const recompile = (): void => {
      this.matchers = undefined;
    };
    this.policies.on({ add: recompile, update: recompile, delete: recompile });
  }

  start(): void {
    for (const informer of this.informers()) informer.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
    this.scanner.close();
  }

  async synced(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.whenSynced));
  }

  get hasSynced(): boolean {
    return this.informers().every((i) => i.hasSynced);
  }

  private informers(): Informer<KubeObject>[] {
    return [this.pods, this.policies, this.namespaces, this.reports] as Informer<KubeObject>[];
  }

  /** The policies matching a pod, by src/policy's selectors (pod-spec.ts); the excluded namespaces are never scanned. */
  matchingPolicies(pod: AgentPod): ConcurrencyPolicy[] {
    this.matchers ??= this.policies.list().map(policyMatcher);
    const namespace = pod.metadata.namespace ?? 'default';
    const namespaceLabels = this.namespaces.get(undefined, namespace)?.metadata.labels;
    return this.matchers.filter((m) => m.matches(namespace, namespaceLabels, pod.metadata.labels)).map((m) => m.policy);
  }

  /** This node's pods to scan: running, with container IDs, not in an excluded namespace. */
  private scannedPods(): { pod: AgentPod; target: PodTarget }[] {
    const result: { pod: AgentPod; target: PodTarget }[] = [];
    for (const pod of this.pods.list()) {
      const namespace = pod.metadata.namespace ?? '';
      if (this.excluded.has(namespace) || pod.spec?.nodeName !== this.options.nodeName) continue;
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed' || !pod.metadata.uid) continue;
      const containers = (pod.status?.containerStatuses ?? [])
        .filter((c) => typeof c.containerID === 'string' && c.containerID !== '')
        .map((c) => ({ name: c.name, containerID: c.containerID as string }));
      if (containers.length === 0) continue;
      const target: PodTarget = {
        uid: cgroupPodUID({ uid: pod.metadata.uid, ...(pod.metadata.annotations ? { annotations: pod.metadata.annotations } : {}) }),
        containers,
      };
      const qos = pod.status?.qosClass;
      if (qos && QOS.has(qos)) target.qos = qos as QosClass;
      result.push({ pod, target });
    }
    return result;
  }

  private state(uid: string): PodState {
    let state = this.podState.get(uid);
    if (!state) {
      state = { history: new PodHistory(this.options.trend), levels: {}, restartCounts: new Map(), crashKey: '', level: 'OK', ticks: 0 };
      this.podState.set(uid, state);
    }
    return state;
  }

  /** Once per process identity: whether it is Go, and for Go its affinity CPU count. */
  private processFacts(pid: number, starttime: number): ProcessInfo {
    const key = identityKey(pid, starttime);
    let info = this.processInfo.get(key);
    if (!info) {
      const go = this.goInfo.get(this.options.procRoot, pid);
      info = { go, seen: this.generation };
      if (go) {
        const cpus = readProcStatus(this.reader, this.options.procRoot, pid)?.affinityCpus;
        if (cpus !== undefined) info.affinityCpus = cpus;
      }
      this.processInfo.set(key, info);
    }
    info.seen = this.generation;
    return info;
  }

  /** GOMAXPROCS/GODEBUG from the pod spec when it settles them, else from the process's environ. */
  private goEnvironment(pod: AgentPod, state: PodState, container: string, pid: number, info: ProcessInfo): GoEnvironment & { source: 'pod-spec' | 'environ' } {
    const resourceVersion = pod.metadata.resourceVersion;
    let cached = state.specEnvironment;
    if (cached === undefined || cached.resourceVersion !== resourceVersion) cached = { resourceVersion, byContainer: new Map<string, GoEnvironment>() };
    state.specEnvironment = cached;
    let fromSpec = cached.byContainer.get(container);
    if (!fromSpec) {
      fromSpec = specGoEnvironment(pod, container);
      cached.byContainer.set(container, fromSpec);
    }
    if (fromSpec.GOMAXPROCS !== undefined || fromSpec.GODEBUG !== undefined) return { ...fromSpec, source: 'pod-spec' };
    if (info.environment === undefined) info.environment = readGoEnvironment(this.options.procRoot, pid) ?? null;
    return { ...(info.environment ?? {}), source: 'environ' };
  }

  private crashes(pod: AgentPod, state: PodState, now: number): void {
    const namespace = pod.metadata.namespace ?? '';
    for (const status of pod.status?.containerStatuses ?? []) {
      const restarts = status.restartCount ?? 0;
      const before = state.restartCounts.get(status.name);
      state.restartCounts.set(status.name, restarts);
      if (restarts < 1 || (before !== undefined && restarts <= before)) continue;
      const terminated = status.lastState?.terminated;
      let signature;
      try {
        signature = readPreviousLogSignature(
          this.options.podLogRoot,
          { namespace, name: pod.metadata.name ?? '', uid: pod.metadata.uid ?? '' },
          status.name,
          restarts,
        );
      } catch (error) {
        this.log.warn({ namespace, pod: pod.metadata.name, container: status.name, error: errorCode(error) }, 'could not read the previous container log');
      }
      const crash = classifyCrash({
        container: status.name,
        ...(terminated?.exitCode !== undefined ? { exitCode: terminated.exitCode } : {}),
        ...(terminated?.reason !== undefined ? { reason: terminated.reason } : {}),
        ...(terminated?.finishedAt !== undefined ? { time: terminated.finishedAt } : {}),
        ...(signature ? { signature } : {}),
      });
      state.lastCrash = crash;
      state.crashSeenAt = now;
      state.crashKey = `${status.name}:${restarts}`;
      this.metrics.crash(crash.class);
      this.log.info({ namespace, pod: pod.metadata.name, container: status.name, class: crash.class, exitCode: crash.exitCode }, 'container restarted');
    }
  }

  /** One tick; resolves when its reports are written. */
  async tick(now: number = Date.now()): Promise<AgentTickResult> {
    const started = performance.now();
    this.generation++;
    const scanned = this.scannedPods();
    const figures: TickFigures = this.scanner.tick(scanned.map((s) => s.target), now);

    // Per pod: matching policies, Go facts, pressure, crashes (all synchronous).
    interface PodWork {
      pod: AgentPod;
      figures: PodFigures;
      state: PodState;
      policies: ConcurrencyPolicy[];
      thresholds: ResolvedThresholds;
      pressure: PodPressure;
      go: PodRuntimeInputs['go'];
    }
    const work: PodWork[] = [];
    let processes = 0;
    scanned.forEach(({ pod }, index) => {
      const podFigures = figures.pods[index];
      if (!podFigures) return;
      processes += podFigures.processes.length;
      const uid = pod.metadata.uid as string;
      const state = this.state(uid);
      const policies = this.matchingPolicies(pod);
      const thresholds = strictestThresholds(policies.map((p) => p.spec?.pressure));
      const goProcesses = new Map<string, { pid: number; info: ProcessInfo }>();
      for (const figuresOfProcess of podFigures.processes) {
        const info = this.processFacts(figuresOfProcess.pid, figuresOfProcess.starttime);
        if (!info.go) continue;
        figuresOfProcess.go = true;
        if (!goProcesses.has(figuresOfProcess.container)) goProcesses.set(figuresOfProcess.container, { pid: figuresOfProcess.pid, info });
      }
      const pressure = evaluatePodWithFreshLimits(this.scanner, podFigures, figures.node, now, thresholds, state.levels, state.history);
      state.levels = { ...(pressure.fileDescriptors ? { fileDescriptors: pressure.fileDescriptors.level } : {}), ...(pressure.threads ? { threads: pressure.threads.level } : {}) };
      // The strictest allowance among the policies with a gomaxprocs section (as src/policy compiles it).
      const maxOver = Math.min(...policies.map((p) => (p.spec?.gomaxprocs ? Math.max(0, Math.floor(p.spec.gomaxprocs.maxOverCPULimit ?? 0)) : Infinity)));
      const go: PodRuntimeInputs['go'] = [];
      for (const [container, { pid, info }] of goProcesses) {
        if (!info.go) continue;
        const containerFigures = podFigures.containers.find((c) => c.name === container);
        const cpu = pressure.cpu.find((c) => c.container === container);
        const verdict = effectiveGomaxprocs({
          buildInfo: info.go,
          environment: this.goEnvironment(pod, state, container, pid, info),
          affinityCpus: info.affinityCpus ?? os.availableParallelism(),
          quotaCores: containerFigures?.cpuQuota?.quotaCores,
          ...(cpu?.throttledPercent !== undefined ? { throttledPercent: cpu.throttledPercent } : {}),
          ...(Number.isFinite(maxOver) ? { maxOverCPULimit: maxOver } : {}),
        });
        go.push({ entry: goRuntime(container, verdict), ...(verdict.message ? { message: verdict.message } : {}) });
      }
      this.crashes(pod, state, now);
      work.push({ pod, figures: podFigures, state, policies, thresholds, pressure, go });
    });

    // Network: one pid per pod, grouped by netns; the node's netns is one entry of its own.
    const podNetns: PodNetns[] = [];
    for (const item of work) {
      const first = item.figures.processes[0];
      if (!first) continue;
      const info = this.processFacts(first.pid, first.starttime);
      if (info.netns === undefined) info.netns = readNetnsIdentity(this.options.procRoot, first.pid) ?? null;
      podNetns.push({
        podUID: item.pod.metadata.uid as string,
        hostNetwork: item.pod.spec?.hostNetwork === true,
        pid: first.pid,
        ...(info.netns ? { netns: info.netns } : {}),
      });
    }
    const entries = netnsEntries(podNetns, this.nodeNetns);
    const samples = new Map<string, { sample: NetnsSample; rates: ReturnType<NetnsHistory['observe']> }>();
    const toRead: { key: string; pid: number }[] = [];
    for (const entry of entries) {
      const counters = readNetnsCounters(this.reader, this.options.procRoot, entry.pid);
      if (!counters) continue;
      const sample: NetnsSample = { time: now, counters: counters.counters, ...(counters.sockets ? { timeWait: counters.sockets.timeWait } : {}) };
      const rates = this.netnsHistory.observe(entry.key, sample);
      samples.set(entry.key, { sample, rates });
      if (this.netnsHistory.movedSincePrevious(entry.key)) toRead.push({ key: entry.key, pid: entry.pid });
      else if (!rates || rates.moved.length === 0) this.listeners.delete(entry.key);
    }
    this.netnsHistory.keepOnly(entries.map((e) => e.key));
    for (const key of this.listeners.keys()) if (!samples.has(key)) this.listeners.delete(key);
    // The slow read, after the synchronous part: listeners of the netns whose queue counters moved.
    await Promise.all(
      toRead.map(async ({ key, pid }) => {
        try {
          const read = await readListeners(this.reader, pid, { mayEnterNetns: this.options.enterNetns, procRoot: this.options.procRoot });
          if (read) this.listeners.set(key, read);
        } catch (error) {
          this.log.debug({ error: errorCode(error) }, 'could not read listeners');
        }
      }),
    );
    const verdictByPod = new Map<string, ListenQueueVerdict>();
    const workByUid = new Map(work.map((w) => [w.pod.metadata.uid as string, w]));
    let nodeDrops: number | undefined;
    for (const entry of entries) {
      const observed = samples.get(entry.key);
      if (!observed?.rates) continue;
      const detail = this.listeners.get(entry.key);
      if (entry.nodeLevel) {
        nodeDrops = listenQueueVerdict(observed.rates, observed.sample).runtime.dropsPerMinute;
        continue;
      }
      for (const uid of entry.podUIDs) {
        const item = workByUid.get(uid);
        if (!item) continue;
        verdictByPod.set(
          uid,
          listenQueueVerdict(observed.rates, observed.sample, item.thresholds.listenQueue, {
            ...(detail ? { listeners: detail.listeners } : {}),
            ...(detail?.somaxconn !== undefined ? { somaxconn: detail.somaxconn } : {}),
          }),
        );
      }
    }
    this.metrics.setNodeDrops(nodeDrops);

    // Reports, events, metrics.
    const crashWarningMs = this.options.crashWarningMs ?? 10 * 60_000;
    const livePods = new Set<string>();
    let writes = 0;
    const observedTime = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    for (const item of work) {
      const { pod, state, pressure } = item;
      const uid = pod.metadata.uid as string;
      const namespace = pod.metadata.namespace ?? '';
      const name = pod.metadata.name ?? '';
      livePods.add(`${namespace}/${name}`);
      const listen = verdictByPod.get(uid);
      const inputs: PodRuntimeInputs = {
        pressure,
        go: item.go,
        ...(listen ? { listenQueue: { runtime: listen.runtime, message: listen.message } } : {}),
        ...(state.lastCrash ? { lastCrash: state.lastCrash } : {}),
        recentCrash: state.lastCrash !== undefined && state.lastCrash.class !== 'other' && now - (state.crashSeenAt ?? 0) < crashWarningMs,
      };
      const level = runtimeLevel(inputs);
      const matched = item.policies.length > 0;
      // The worst container's throttled share; -1 when no container has one yet.
      const throttled = Math.max(-1, ...pressure.cpu.map((c) => c.throttledPercent ?? -1));
      this.metrics.setPod(namespace, name, {
        level,
        matched,
        ...(pressure.fileDescriptors ? { fdPercent: pressure.fileDescriptors.percent } : {}),
        ...(pressure.threads ? { threadPercent: pressure.threads.percent, threads: pressure.threads.threads } : {}),
        ...(listen ? { dropsPerMinute: listen.runtime.dropsPerMinute } : {}),
        ...(item.go.length > 0 ? { gomaxprocsMismatch: item.go.some((g) => g.entry.mismatch) } : {}),
        ...(throttled >= 0 ? { throttledPercent: throttled } : {}),
      });
      const turnedCritical = level === 'Critical' && state.level !== 'Critical';
      state.level = level;
      state.ticks++;
      // A report from the first tick would lack the throttled share and the rates, and be rewritten at once.
      if (!matched || state.ticks < 2) continue;
      const summary = buildSummary(inputs, level);
      const drafts = conditionDrafts(inputs);
      if (turnedCritical) void this.criticalEvent(pod, drafts);
      const existing = this.reports.get(namespace, name);
      const reportExists = existing?.spec.podUID === uid;
      // The controller deleted the report we wrote (TTL at OK): under --reports=problems, start over.
      if (!reportExists && state.written && this.reports.hasSynced && now - state.written.time > 30_000 && PRESSURE_RANK[level] < PRESSURE_RANK.Warning) {
        state.written = undefined;
        state.conditions = undefined;
      }
      // The throttled share is no summary column, but a quarter of the periods more or less is news.
      const throttledBand = throttled < 0 ? '' : String(Math.floor(throttled / 25));
      const next = { bands: `${summaryBands(summary)}|${throttledBand}`, conditionStatuses: conditionStatuses(drafts), crashKey: state.crashKey };
      const reason = writeDecision({
        now,
        last: state.written,
        next,
        level,
        reportExists,
        reports: this.options.reports,
        minWriteIntervalMs: this.options.minWriteIntervalMs ?? 60_000,
        refreshIntervalMs: this.options.refreshIntervalMs ?? 10 * 60_000,
      });
      if (!reason) continue;
      const conditions = withTransitionTimes(drafts, state.conditions, observedTime);
      try {
        const outcome = await this.writer.write(
          { namespace, name, uid, ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}) },
          { runtime: buildRuntime(inputs, observedTime), summary, conditions },
        );
        this.metrics.write(outcome);
        if (outcome === 'pod-gone') continue;
        writes++;
        state.written = { time: now, ...next };
        state.conditions = conditions;
        if (reason !== 'band' && reason !== 'refresh') this.log.info({ namespace, pod: name, level, reason }, 'report written');
      } catch (error) {
        this.metrics.write('error');
        this.log.warn({ namespace, pod: name, error: errorCode(error) }, 'report write failed; retried next tick');
      }
    }

    // Forget pods and processes no longer here.
    const liveUIDs = new Set(work.map((w) => w.pod.metadata.uid as string));
    for (const uid of this.podState.keys()) if (!liveUIDs.has(uid)) this.podState.delete(uid);
    for (const [key, info] of this.processInfo) if (info.seen < this.generation) this.processInfo.delete(key);
    this.metrics.keepPods(livePods);
    this.metrics.scanned(work.length, processes);
    const durationMs = performance.now() - started;
    this.metrics.tickSeconds.observe(durationMs / 1000);
    this.ticks++;
    const result = { time: now, pods: work.length, processes, writes, durationMs };
    this.options.onTick?.(result);
    return result;
  }

  private async criticalEvent(pod: AgentPod, conditions: readonly ReturnType<typeof conditionDrafts>[number][]): Promise<void> {
    const note = conditions.filter((d) => d.status === 'True').map((d) => `${d.type}: ${d.message}`).join('; ') || 'runtime pressure Critical';
    await this.events.record(
      { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name ?? 'pod', namespace: pod.metadata.namespace ?? 'default', ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}) },
      'Warning', 'PressureCritical', note,
    );
  }

}

/**
 * Runs the node agent until `signal` aborts: informers, a tick every `interval` (never two at once),
 * /metrics on metricsPort and /healthz, /readyz (informers synced and one tick done) on healthPort.
 */
export async function runAgent(options: RunAgentOptions, signal: AbortSignal): Promise<void> {
  const log = options.log ?? createLogger({ name: 'concurrency-guard-agent' });
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const client = options.client ?? await createClientFor(options, 'concurrency-guard-node-agent');
  const agent = new NodeAgent(options, client, log, registry);
  const host = options.host ?? '0.0.0.0';
  const metricsServer = http.createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    void answerScrape(registry, response);
  });
  const healthServer = http.createServer((request, response) => {
    if (request.url === '/healthz') response.writeHead(200).end('ok');
    else if (request.url === '/readyz') {
      const ready = agent.hasSynced && agent.ticks > 0;
      response.writeHead(ready ? 200 : 503).end(ready ? 'ok' : 'not ready');
    } else response.writeHead(404).end();
  });
  const metricsPort = await listen(metricsServer, options.metricsPort, host);
  const healthPort = await listen(healthServer, options.healthPort, host);
  options.onListening?.({ metricsPort, healthPort });
  agent.start();
  log.info({ node: options.nodeName, interval: options.interval, reports: options.reports, cgroup: agent.scanner.layout.version }, 'node agent started');
  try {
    await Promise.race([agent.synced(), whenAborted(signal)]);
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await agent.tick(started);
      } catch (error) {
        log.error({ error: errorCode(error) }, 'tick failed');
      }
      const wait = Math.max(0, options.interval - (Date.now() - started));
      // timers/promises removes its abort listener when the timer fires: one listener per tick would pile up.
      await sleep(wait, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    await agent.stop();
    await Promise.all([closeServer(metricsServer), closeServer(healthServer)]);
    if (!options.client) client.close();
    log.info({}, 'node agent stopped');
  }
}
