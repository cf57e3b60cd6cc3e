// From one tick's figures to pressure levels: pure (no I/O, no clock; time comes with the figures).
//
// File descriptors: the worst process by fds / its own soft RLIMIT_NOFILE (each process has its own
// limit and EMFILE hits one process, so a pod-wide sum means nothing), named by pid and comm.
// Threads: every limit that can stop the pod's next thread, and the one with the least headroom binds:
//   pids.max of each cgroup from the container leaf up (pids.current counts the whole subtree);
//   RLIMIT_NPROC of a process, against every task of its real UID on the node (root is exempt);
//   Go's 10000-thread cap per Go process (debug.SetMaxThreads default);
//   kernel.threads-max and kernel.pid_max against the node's task count.
// The reported percent is that limit's use (for RLIMIT_NPROC: all the UID's tasks, other pods included).
// Trend: growth per minute from a least-squares slope over a sliding window of samples, and the seconds
// left to the limit at that rate.
import type {
  CPURuntime,
  FileDescriptorRuntime,
  PercentThresholds,
  PressureLevel,
  PressureThresholds,
  ThreadLimitSource,
  ThreadRuntime,
} from '../api/v1alpha1.ts';
import { DEFAULT_PRESSURE, PRESSURE_RANK } from '../api/v1alpha1.ts';
import type { NodeFigures, PodFigures, ProcessFigures } from './scan.ts';
import type { CpuThrottling } from './readers/cgroup-cpu.ts';
import { identityKey } from './attribution/process-identity.ts';

/** runtime/debug.SetMaxThreads default: past it a Go program dies with "thread exhaustion". */
export const GO_MAX_THREADS = 10_000;

export type ResolvedThresholds = typeof DEFAULT_PRESSURE;

/**
 * The strictest threshold of each figure among the matching policies; a policy without a `pressure`
 * section contributes nothing, a missing field inside one takes the built-in default.
 */
export function strictestThresholds(policies: readonly (PressureThresholds | undefined)[]): ResolvedThresholds {
  const result = structuredClone(DEFAULT_PRESSURE);
  const withPressure = policies.filter((p): p is PressureThresholds => p !== undefined);
  if (withPressure.length === 0) return result;
  const pick = <T extends object>(defaults: Required<T>, values: (T | undefined)[]): Required<T> => {
    const out = {} as Required<T>;
    for (const key of Object.keys(defaults) as (keyof T)[]) {
      const each = values.map((v) => (v?.[key] as number | undefined) ?? (defaults[key] as number));
      (out[key] as number) = Math.min(...each);
    }
    return out;
  };
  result.fileDescriptors = pick(DEFAULT_PRESSURE.fileDescriptors, withPressure.map((p) => p.fileDescriptors));
  result.threads = pick(DEFAULT_PRESSURE.threads, withPressure.map((p) => p.threads));
  // Drops: fewer drops per minute is stricter; throttling: a lower share is stricter.
  result.listenQueue = pick(DEFAULT_PRESSURE.listenQueue, withPressure.map((p) => p.listenQueue));
  result.cpuThrottling = pick(DEFAULT_PRESSURE.cpuThrottling, withPressure.map((p) => p.cpuThrottling));
  return result;
}

export function levelForPercent(percent: number, thresholds: Required<PercentThresholds>): PressureLevel {
  if (percent >= thresholds.criticalPercent) return 'Critical';
  if (percent >= thresholds.warningPercent) return 'Warning';
  return 'OK';
}

export function raisesLevel(previous: PressureLevel | undefined, next: PressureLevel): boolean {
  return PRESSURE_RANK[next] > PRESSURE_RANK[previous ?? 'OK'];
}

export function worstLevel(levels: readonly (PressureLevel | undefined)[]): PressureLevel {
  let worst: PressureLevel = 'OK';
  for (const level of levels) if (level !== undefined && PRESSURE_RANK[level] > PRESSURE_RANK[worst]) worst = level;
  return worst;
}

function roundPercent(used: number, limit: number): number {
  return Math.round((used / limit) * 1000) / 10;
}

// ---- trend ----

export interface Sample {
  time: number;
  value: number;
}

export interface TrendOptions {
  /** Samples older than this are dropped. */
  windowMs: number;
  /** No growth figure before the window spans this long (a 10 s tick would otherwise extrapolate noise). */
  minSpanMs: number;
  minSamples: number;
}

export const DEFAULT_TREND: TrendOptions = { windowMs: 10 * 60_000, minSpanMs: 60_000, minSamples: 3 };

export class SlidingWindow {
  readonly samples: Sample[] = [];
  private readonly options: TrendOptions;

  constructor(options: TrendOptions = DEFAULT_TREND) {
    this.options = options;
  }

  add(time: number, value: number): void {
    const last = this.samples.at(-1);
    if (last && time <= last.time) return;
    this.samples.push({ time, value });
    while (this.samples.length > 0 && (this.samples[0]?.time ?? time) < time - this.options.windowMs) this.samples.shift();
  }

  /** Least-squares slope in units per minute, or undefined while the window is too short. */
  growthPerMinute(): number | undefined {
    const n = this.samples.length;
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || n < this.options.minSamples || last.time - first.time < this.options.minSpanMs) return undefined;
    let sumT = 0;
    let sumV = 0;
    for (const s of this.samples) {
      sumT += s.time - first.time;
      sumV += s.value;
    }
    const meanT = sumT / n;
    const meanV = sumV / n;
    let numerator = 0;
    let denominator = 0;
    for (const s of this.samples) {
      const dt = s.time - first.time - meanT;
      numerator += dt * (s.value - meanV);
      denominator += dt * dt;
    }
    if (denominator === 0) return undefined;
    return Math.round((numerator / denominator) * 60_000 * 100) / 100;
  }
}

/** Seconds until `headroom` is used up at `perMinute`; undefined when not growing. */
export function secondsToExhaustion(headroom: number, perMinute: number | undefined): number | undefined {
  if (perMinute === undefined || perMinute <= 0) return undefined;
  return Math.max(0, Math.round((headroom / perMinute) * 60));
}

/** Per-pod memory between ticks: fd windows per process identity, the thread window, CPU counters. */
export class PodHistory {
  readonly fds = new Map<string, SlidingWindow>();
  readonly threads: SlidingWindow;
  readonly cpu = new Map<string, CpuThrottling>();
  private readonly trend: TrendOptions;

  constructor(trend: TrendOptions = DEFAULT_TREND) {
    this.trend = trend;
    this.threads = new SlidingWindow(trend);
  }

  fdWindow(process: ProcessFigures): SlidingWindow {
    const key = identityKey(process.pid, process.starttime);
    let window = this.fds.get(key);
    if (!window) {
      window = new SlidingWindow(this.trend);
      this.fds.set(key, window);
    }
    return window;
  }

  /** Forgets processes that are not in this tick's figures. */
  keepOnly(processes: readonly ProcessFigures[]): void {
    const live = new Set(processes.map((p) => identityKey(p.pid, p.starttime)));
    for (const key of this.fds.keys()) if (!live.has(key)) this.fds.delete(key);
  }
}

// ---- figures → runtime status ----

export function fileDescriptorPressure(
  pod: PodFigures,
  time: number,
  thresholds: Required<PercentThresholds>,
  history?: PodHistory,
): FileDescriptorRuntime | undefined {
  let worst: ProcessFigures | undefined;
  for (const process of pod.processes) {
    history?.fdWindow(process).add(time, process.fds);
    if (!Number.isFinite(process.nofile.soft) || process.nofile.soft <= 0) continue;
    if (!worst || process.fds / process.nofile.soft > worst.fds / worst.nofile.soft) worst = process;
  }
  history?.keepOnly(pod.processes);
  if (!worst) return undefined;
  const percent = roundPercent(worst.fds, worst.nofile.soft);
  const result: FileDescriptorRuntime = {
    level: levelForPercent(percent, thresholds),
    open: worst.fds,
    limit: worst.nofile.soft,
    percent,
    process: { pid: worst.pid, comm: worst.comm, container: worst.container, count: worst.fds, limit: worst.nofile.soft },
  };
  const growth = history?.fdWindow(worst).growthPerMinute();
  if (growth !== undefined) {
    result.growthPerMinute = growth;
    const seconds = secondsToExhaustion(worst.nofile.soft - worst.fds, growth);
    if (seconds !== undefined) result.secondsToExhaustion = seconds;
  }
  return result;
}

export interface ThreadLimitUse {
  source: ThreadLimitSource;
  used: number;
  limit: number;
  /** How many more tasks before this limit refuses one. */
  headroom: number;
  /** The process the limit belongs to, for per-process limits. */
  pid?: number;
}

/** Every finite limit on the pod's next thread, with its use. */
export function threadLimits(pod: PodFigures, node: NodeFigures): ThreadLimitUse[] {
  const uses: ThreadLimitUse[] = [];
  const add = (use: Omit<ThreadLimitUse, 'headroom'>): void => {
    if (Number.isFinite(use.limit)) uses.push({ ...use, headroom: use.limit - use.used });
  };
  for (const level of pod.pidsChain) add({ source: 'pids.max', used: level.current, limit: level.max });
  const nprocSeen = new Set<string>();
  for (const process of pod.processes) {
    if (process.realUid !== undefined && process.realUid !== 0) {
      // The kernel exempts root in the initial user namespace (and CAP_SYS_RESOURCE/SYS_ADMIN holders,
      // which we do not see here).
      const key = `${process.realUid}:${process.nproc.soft}`;
      if (!nprocSeen.has(key)) {
        nprocSeen.add(key);
        const used = node.tasksByUid.get(process.realUid);
        if (used !== undefined) add({ source: 'RLIMIT_NPROC', used, limit: process.nproc.soft, pid: process.pid });
      }
    }
    if (process.go) add({ source: 'go-max-threads', used: process.threads, limit: GO_MAX_THREADS, pid: process.pid });
  }
  if (node.kernel) {
    add({ source: 'kernel.threads-max', used: node.kernel.tasks, limit: node.kernel.threadsMax });
    add({ source: 'kernel.pid_max', used: node.kernel.tasks, limit: node.kernel.pidMax });
  }
  return uses;
}

const SOURCE_ORDER: readonly ThreadLimitSource[] = [
  'pids.max',
  'RLIMIT_NPROC',
  'go-max-threads',
  'kernel.threads-max',
  'kernel.pid_max',
];

/** The limit that refuses a thread first: least headroom; ties go to the narrower scope. */
export function bindingThreadLimit(uses: readonly ThreadLimitUse[]): ThreadLimitUse | undefined {
  let binding: ThreadLimitUse | undefined;
  for (const use of uses) {
    if (
      !binding ||
      use.headroom < binding.headroom ||
      (use.headroom === binding.headroom && SOURCE_ORDER.indexOf(use.source) < SOURCE_ORDER.indexOf(binding.source))
    ) {
      binding = use;
    }
  }
  return binding;
}

export function threadPressure(
  pod: PodFigures,
  node: NodeFigures,
  time: number,
  thresholds: Required<PercentThresholds>,
  history?: PodHistory,
): ThreadRuntime | undefined {
  const threads = pod.processes.reduce((sum, p) => sum + p.threads, 0);
  history?.threads.add(time, threads);
  const binding = bindingThreadLimit(threadLimits(pod, node));
  if (!binding || binding.limit <= 0) return undefined;
  const percent = roundPercent(binding.used, binding.limit);
  const result: ThreadRuntime = {
    level: levelForPercent(percent, thresholds),
    threads,
    limit: binding.limit,
    percent,
    bindingLimit: binding.source,
  };
  const growth = history?.threads.growthPerMinute();
  if (growth !== undefined) {
    result.growthPerMinute = growth;
    const seconds = secondsToExhaustion(binding.headroom, growth);
    if (seconds !== undefined) result.secondsToExhaustion = seconds;
  }
  return result;
}

/**
 * Each container's quota in cores and the share of its CFS periods throttled since the previous tick
 * (the first tick has no throttled share yet).
 */
export function cpuPressure(pod: PodFigures, history?: PodHistory): CPURuntime[] {
  const result: CPURuntime[] = [];
  for (const container of pod.containers) {
    if (!container.found) continue;
    const entry: CPURuntime = { container: container.name };
    if (container.cpuQuota?.quotaCores !== undefined) entry.quotaCores = container.cpuQuota.quotaCores;
    const now = container.cpuThrottling;
    const before = history?.cpu.get(container.name);
    if (now && before) {
      // Counters that went down belong to a new cgroup (the container restarted): no share this tick.
      const periods = now.periods - before.periods;
      const throttled = now.throttledPeriods - before.throttledPeriods;
      if (periods > 0 && throttled >= 0) entry.throttledPercent = roundPercent(throttled, periods);
    }
    if (now) history?.cpu.set(container.name, now);
    result.push(entry);
  }
  return result;
}

export interface PodPressure {
  fileDescriptors?: FileDescriptorRuntime;
  threads?: ThreadRuntime;
  cpu: CPURuntime[];
  /** Worst of the levels above. */
  level: PressureLevel;
}

export function evaluatePod(
  pod: PodFigures,
  node: NodeFigures,
  time: number,
  thresholds: ResolvedThresholds,
  history?: PodHistory,
): PodPressure {
  const fileDescriptors = fileDescriptorPressure(pod, time, thresholds.fileDescriptors, history);
  const threads = threadPressure(pod, node, time, thresholds.threads, history);
  const cpu = cpuPressure(pod, history);
  const result: PodPressure = { cpu, level: worstLevel([fileDescriptors?.level, threads?.level]) };
  if (fileDescriptors) result.fileDescriptors = fileDescriptors;
  if (threads) result.threads = threads;
  return result;
}
