// The agent's report content and write decisions (pure), the listen-rate window, and the affinity CPU
// count from /proc/PID/status. Expected values are written out by hand.
import { describe, expect, it } from 'vitest';
import type { PodPressure } from '../../src/node-agent/pressure.ts';
import { NetnsHistory, type NetnsSample } from '../../src/node-agent/network.ts';
import { parseProcStatus } from '../../src/node-agent/readers/proc-status.ts';
import {
  bandedCount,
  buildSummary,
  conditionDrafts,
  runtimeLevel,
  summaryBands,
  withTransitionTimes,
  writeDecision,
  type PodRuntimeInputs,
  type WriteDecisionInputs,
} from '../../src/node-agent/report.ts';

const critical: PodPressure = {
  level: 'Critical',
  cpu: [],
  fileDescriptors: {
    level: 'Critical', open: 9_876, limit: 10_240, percent: 96.4,
    process: { pid: 4242, comm: 'api', container: 'app', count: 9_876, limit: 10_240 },
  },
  threads: { level: 'OK', threads: 37, limit: 4096, percent: 0.9, bindingLimit: 'pids.max' },
};

function inputs(overrides: Partial<PodRuntimeInputs> = {}): PodRuntimeInputs {
  return { pressure: critical, go: [], recentCrash: false, ...overrides };
}

describe('report content', () => {
  it('bands counts to two significant digits for the FDS column', () => {
    expect(bandedCount(0)).toBe('0');
    expect(bandedCount(999)).toBe('999');
    expect(bandedCount(1_000)).toBe('1k');
    expect(bandedCount(9_876)).toBe('9.8k');
    expect(bandedCount(10_240)).toBe('10k');
    expect(bandedCount(65_536)).toBe('65k');
    expect(bandedCount(1_048_576)).toBe('1M');
    expect(bandedCount(Infinity)).toBe('inf');
  });

  it('summarises the worst figures, integers only', () => {
    expect(buildSummary(inputs(), 'Critical')).toEqual({ level: 'Critical', fds: '9.8k/10k', fdPercent: 96, threads: 37 });
  });

  it('names the worst process and the binding thread limit in the conditions', () => {
    expect(conditionDrafts(inputs())).toEqual([
      { type: 'FileDescriptorPressure', status: 'True', reason: 'Critical', message: '9876/10240 fds, 96.4% (pid 4242 api)' },
      { type: 'ThreadPressure', status: 'False', reason: 'OK', message: '0.9% of pids.max (4096)' },
    ]);
  });

  it('counts a GOMAXPROCS mismatch and a recent classified crash as Warning', () => {
    const ok: PodPressure = { level: 'OK', cpu: [] };
    expect(runtimeLevel(inputs({ pressure: ok }))).toBe('OK');
    expect(runtimeLevel(inputs({ pressure: ok, recentCrash: true }))).toBe('Warning');
    expect(runtimeLevel(inputs({ pressure: ok, go: [{ entry: { container: 'app', effectiveGOMAXPROCS: 2, mismatch: true }, message: 'GOMAXPROCS=2 on 0.5 CPU' }] }))).toBe('Warning');
    expect(conditionDrafts(inputs({ pressure: ok, go: [{ entry: { container: 'app', mismatch: true }, message: 'GOMAXPROCS=2 on 0.5 CPU' }] }))).toEqual([
      { type: 'GOMAXPROCSMismatch', status: 'True', reason: 'QuotaExceeded', message: 'GOMAXPROCS=2 on 0.5 CPU' },
    ]);
  });

  it('keeps lastTransitionTime while a condition’s status stays', () => {
    const previous = [{ type: 'ThreadPressure', status: 'False' as const, reason: 'OK', message: 'x', lastTransitionTime: '2026-11-27T20:00:00Z' }];
    const drafts = conditionDrafts(inputs());
    expect(withTransitionTimes(drafts, previous, '2026-11-27T21:00:00Z').map((c) => [c.type, c.lastTransitionTime])).toEqual([
      ['FileDescriptorPressure', '2026-11-27T21:00:00Z'],
      ['ThreadPressure', '2026-11-27T20:00:00Z'],
    ]);
  });
});

describe('when to write', () => {
  const base: WriteDecisionInputs = {
    now: 1_000_000,
    last: undefined,
    next: { bands: 'OK|10/1k|1|37|', conditionStatuses: 'FileDescriptorPressure=False', crashKey: '' },
    level: 'OK',
    reportExists: false,
    reports: 'problems',
    minWriteIntervalMs: 60_000,
    refreshIntervalMs: 600_000,
  };
  const written = { time: 990_000, bands: 'OK|10/1k|1|37|', conditionStatuses: 'FileDescriptorPressure=False', crashKey: '' };

  it('creates a report only at Warning or above under problems, for every matched pod under all', () => {
    expect(writeDecision(base)).toBeUndefined();
    expect(writeDecision({ ...base, level: 'Warning' })).toBe('create');
    expect(writeDecision({ ...base, reports: 'all' })).toBe('create');
    // A report another writer created: the agent adds its part.
    expect(writeDecision({ ...base, reportExists: true })).toBe('create');
  });

  it('writes a level change at once, a band crossing at most once a minute, nothing in steady state', () => {
    expect(writeDecision({ ...base, last: written })).toBeUndefined();
    expect(writeDecision({ ...base, last: written, next: { ...written, bands: 'Warning|900/1k|90|37|' } })).toBe('level');
    expect(writeDecision({ ...base, last: written, next: { ...written, conditionStatuses: 'FileDescriptorPressure=True' } })).toBe('level');
    expect(writeDecision({ ...base, last: written, next: { ...written, crashKey: 'app:1' } })).toBe('crash');
    expect(writeDecision({ ...base, last: written, next: { ...written, bands: 'OK|20/1k|2|37|' } })).toBeUndefined(); // 10 s after
    expect(writeDecision({ ...base, now: 1_050_000, last: written, next: { ...written, bands: 'OK|20/1k|2|37|' } })).toBe('band');
    expect(writeDecision({ ...base, now: 990_000 + 600_000, last: written })).toBe('refresh');
  });

  it('bands FD% in steps of 5, threads at two significant digits, drops by decade', () => {
    expect(summaryBands({ level: 'OK', fds: '10/1k', fdPercent: 41, threads: 1234, dropsPerMinute: 7 })).toBe('OK|10/1k|8|1200|1');
    expect(summaryBands({ level: 'OK', fds: '10/1k', fdPercent: 44, threads: 1299, dropsPerMinute: 9 })).toBe('OK|10/1k|8|1200|1');
    expect(summaryBands({ level: 'OK', fds: '10/1k', fdPercent: 45, threads: 1300, dropsPerMinute: 10 })).toBe('OK|10/1k|9|1300|2');
  });
});

describe('listen rates over a window', () => {
  const at = (time: number, overflows: number): NetnsSample => ({
    time,
    counters: { listenOverflows: overflows, listenDrops: overflows, reqQFullDrop: 0, reqQFullDoCookies: 0, syncookiesSent: 0 },
  });

  it('rates over the last minute hold a burst for that minute; movement is since the previous tick', () => {
    const history = new NetnsHistory(60_000);
    expect(history.observe('pod', at(0, 0))).toBeUndefined();
    expect(history.observe('pod', at(10_000, 24))?.overflowsPerMinute).toBe(144); // 24 in 10 s
    expect(history.movedSincePrevious('pod')).toBe(true);
    expect(history.observe('pod', at(20_000, 24))?.overflowsPerMinute).toBe(72); // 24 in 20 s
    expect(history.movedSincePrevious('pod')).toBe(false);
    for (let t = 30_000; t <= 60_000; t += 10_000) history.observe('pod', at(t, 24));
    expect(history.observe('pod', at(70_000, 24))?.overflowsPerMinute).toBe(0); // the burst left the window
  });

  it('starts over when counters go backwards (a new netns behind the key)', () => {
    const history = new NetnsHistory(60_000);
    history.observe('pod', at(0, 50));
    expect(history.observe('pod', at(10_000, 3))).toBeUndefined();
    expect(history.observe('pod', at(20_000, 9))?.overflowsPerMinute).toBe(36);
  });
});

describe('/proc/PID/status affinity', () => {
  it('counts Cpus_allowed_list', () => {
    const text = 'Name:\tapi\nUid:\t1000\t1000\t1000\t1000\nThreads:\t9\nCpus_allowed:\tff\nCpus_allowed_list:\t0-3,8,10-11\n';
    expect(parseProcStatus(text)).toEqual({ realUid: 1000, threads: 9, affinityCpus: 7 });
  });
});
