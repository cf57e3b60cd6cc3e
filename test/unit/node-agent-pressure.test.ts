// pressure.ts: thresholds, the binding thread limit, the worst fd process, trends. Pure; figures by hand.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRESSURE } from '../../src/api/v1alpha1.ts';
import {
  bindingThreadLimit,
  cpuPressure,
  evaluatePod,
  GO_MAX_THREADS,
  levelForPercent,
  PodHistory,
  raisesLevel,
  secondsToExhaustion,
  SlidingWindow,
  strictestThresholds,
  threadLimits,
  type NodeFigures,
  type PodFigures,
  type ProcessFigures,
} from '../../src/node-agent/index.ts';

const noLimit = { soft: Infinity, hard: Infinity };

function proc(pid: number, fds: number, nofileSoft: number, extra: Partial<ProcessFigures> = {}): ProcessFigures {
  return {
    pid,
    starttime: pid * 10,
    comm: `p${pid}`,
    container: 'app',
    fds,
    threads: 1,
    nofile: { soft: nofileSoft, hard: nofileSoft },
    nproc: noLimit,
    ...extra,
  };
}

function pod(processes: ProcessFigures[], pidsChain: PodFigures['pidsChain'] = []): PodFigures {
  return { uid: 'u', containers: [{ name: 'app', found: true, processes: processes.length }], processes, pidsChain };
}

const quietNode: NodeFigures = {
  kernel: { threadsMax: 192730, pidMax: 4194304, tasks: 300 },
  tasksByUid: new Map(),
};

describe('thresholds', () => {
  it('defaults when no policy has a pressure section', () => {
    expect(strictestThresholds([undefined, undefined])).toEqual(DEFAULT_PRESSURE);
  });

  it('takes the strictest value of each field, defaults filling fields a policy leaves out', () => {
    const merged = strictestThresholds([
      { fileDescriptors: { warningPercent: 70 } },
      { fileDescriptors: { criticalPercent: 90 }, threads: { warningPercent: 85, criticalPercent: 99 } },
      { listenQueue: { criticalDropsPerMinute: 10 }, cpuThrottling: { warningPercent: 10 } },
      undefined,
    ]);
    expect(merged).toEqual({
      fileDescriptors: { warningPercent: 70, criticalPercent: 90 },
      threads: { warningPercent: 80, criticalPercent: 95 },
      listenQueue: { warningDropsPerMinute: 1, criticalDropsPerMinute: 10 },
      cpuThrottling: { warningPercent: 10 },
    });
  });

  it('levels at and above each threshold', () => {
    const t = { warningPercent: 80, criticalPercent: 95 };
    expect([79.9, 80, 94.9, 95, 120].map((p) => levelForPercent(p, t))).toEqual(['OK', 'Warning', 'Warning', 'Critical', 'Critical']);
    expect(raisesLevel('OK', 'Warning')).toBe(true);
    expect(raisesLevel(undefined, 'OK')).toBe(false);
    expect(raisesLevel('Critical', 'Warning')).toBe(false);
  });
});

describe('file descriptors', () => {
  it('names the process closest to its own soft limit, not the one with the most fds', () => {
    const figures = pod([proc(10, 9000, 65536), proc(11, 900, 1024), proc(12, 5, Infinity)]);
    expect(evaluatePod(figures, quietNode, 0, DEFAULT_PRESSURE).fileDescriptors).toEqual({
      level: 'Warning',
      open: 900,
      limit: 1024,
      percent: 87.9,
      process: { pid: 11, comm: 'p11', container: 'app', count: 900, limit: 1024 },
    });
  });

  it('has no figure for a pod without processes', () => {
    expect(evaluatePod(pod([]), quietNode, 0, DEFAULT_PRESSURE).fileDescriptors).toBeUndefined();
  });
});

describe('threads', () => {
  it('lists every finite limit with its use and headroom', () => {
    const figures = pod(
      [proc(20, 3, 1024, { threads: 40, realUid: 1000, nproc: { soft: 100, hard: 100 }, go: true })],
      [
        { scope: 'container', max: Infinity, current: 40 },
        { scope: 'pod', max: 1024, current: 41 },
      ],
    );
    const node: NodeFigures = { ...quietNode, tasksByUid: new Map([[1000, 90]]) };
    expect(threadLimits(figures, node)).toEqual([
      { source: 'pids.max', used: 41, limit: 1024, headroom: 983 },
      { source: 'RLIMIT_NPROC', used: 90, limit: 100, headroom: 10, pid: 20 },
      { source: 'go-max-threads', used: 40, limit: GO_MAX_THREADS, headroom: 9960, pid: 20 },
      { source: 'kernel.threads-max', used: 300, limit: 192730, headroom: 192430 },
      { source: 'kernel.pid_max', used: 300, limit: 4194304, headroom: 4194004 },
    ]);
    expect(evaluatePod(figures, node, 0, DEFAULT_PRESSURE).threads).toEqual({
      level: 'Warning',
      threads: 40,
      limit: 100,
      percent: 90,
      bindingLimit: 'RLIMIT_NPROC',
    });
  });

  it('root is exempt from RLIMIT_NPROC; Go’s cap applies only to known Go programs', () => {
    const figures = pod([proc(30, 3, 1024, { threads: 9990, realUid: 0, nproc: { soft: 10, hard: 10 } })]);
    const node: NodeFigures = { ...quietNode, tasksByUid: new Map([[0, 10_000]]) };
    expect(threadLimits(figures, node).map((l) => l.source)).toEqual(['kernel.threads-max', 'kernel.pid_max']);
    const goFigures = pod([proc(30, 3, 1024, { threads: 9990, go: true })]);
    expect(evaluatePod(goFigures, quietNode, 0, DEFAULT_PRESSURE).threads).toEqual({
      level: 'Critical',
      threads: 9990,
      limit: 10000,
      percent: 99.9,
      bindingLimit: 'go-max-threads',
    });
  });

  it('kernel.pid_max binds on a node whose pids run out first', () => {
    const node: NodeFigures = { kernel: { threadsMax: 192730, pidMax: 32768, tasks: 31000 }, tasksByUid: new Map() };
    expect(evaluatePod(pod([proc(40, 3, 1024)]), node, 0, DEFAULT_PRESSURE).threads).toMatchObject({
      bindingLimit: 'kernel.pid_max',
      limit: 32768,
      percent: 94.6,
      level: 'Warning',
    });
  });

  it('on equal headroom the narrower limit is named', () => {
    expect(
      bindingThreadLimit([
        { source: 'kernel.threads-max', used: 90, limit: 100, headroom: 10 },
        { source: 'pids.max', used: 10, limit: 20, headroom: 10 },
      ])?.source,
    ).toBe('pids.max');
  });
});

describe('trend', () => {
  it('least-squares growth per minute once the window spans a minute; none before', () => {
    const window = new SlidingWindow();
    window.add(0, 100);
    window.add(30_000, 103);
    expect(window.growthPerMinute()).toBeUndefined(); // 2 samples, 30 s
    window.add(60_000, 112);
    // times 0, 30, 60 s; values 100, 103, 112: slope 12 / 60 s = 12 per minute.
    expect(window.growthPerMinute()).toBe(12);
  });

  it('forgets samples older than the window', () => {
    const window = new SlidingWindow({ windowMs: 60_000, minSpanMs: 0, minSamples: 2 });
    for (const [t, v] of [[0, 0], [30_000, 1000], [70_000, 1010], [100_000, 1013]] as const) window.add(t, v);
    expect(window.samples.map((s) => s.time)).toEqual([70_000, 100_000]);
    expect(window.growthPerMinute()).toBe(6);
  });

  it('seconds to exhaustion only when growing', () => {
    expect(secondsToExhaustion(600, 60)).toBe(600);
    expect(secondsToExhaustion(600, 0)).toBeUndefined();
    expect(secondsToExhaustion(600, -5)).toBeUndefined();
    expect(secondsToExhaustion(600, undefined)).toBeUndefined();
  });

  it('threads: growth of the pod’s threads against the binding limit’s headroom', () => {
    const history = new PodHistory();
    let result;
    for (let i = 0; i <= 6; i++) {
      const threads = 100 + 10 * i; // +60 per minute
      const figures = pod([proc(50, 3, 1024, { threads })], [{ scope: 'pod', max: 400, current: threads }]);
      result = evaluatePod(figures, quietNode, i * 10_000, DEFAULT_PRESSURE, history).threads;
    }
    // At 160 of 400: 240 left at 60 per minute.
    expect(result).toEqual({
      level: 'OK',
      threads: 160,
      limit: 400,
      percent: 40,
      bindingLimit: 'pids.max',
      growthPerMinute: 60,
      secondsToExhaustion: 240,
    });
  });
});

describe('cpu', () => {
  it('throttled share of the periods since the previous tick, per container', () => {
    const history = new PodHistory();
    const figures = (periods: number, throttled: number): PodFigures => ({
      ...pod([]),
      containers: [
        {
          name: 'app',
          found: true,
          processes: 1,
          cpuQuota: { quotaCores: 0.5, quotaMicros: 50000, periodMicros: 100000 },
          cpuThrottling: { periods, throttledPeriods: throttled, throttledMicros: 0 },
        },
        { name: 'missing', found: false, processes: 0 },
      ],
    });
    expect(cpuPressure(figures(1000, 100), history)).toEqual([{ container: 'app', quotaCores: 0.5 }]);
    expect(cpuPressure(figures(1400, 250), history)).toEqual([{ container: 'app', quotaCores: 0.5, throttledPercent: 37.5 }]);
    // Restarted: a new cgroup's counters start again from zero.
    expect(cpuPressure(figures(1500, 3), history)).toEqual([{ container: 'app', quotaCores: 0.5 }]);
  });
});
