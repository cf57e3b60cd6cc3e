// From one pod's evaluated pressure to the agent's part of its ConcurrencyReport, and the decision
// whether to write it: pure (no I/O; times come in as arguments).
//
// Writes are what take etcd down (DESIGN.md), so a report is written
//   - at once when a level changes (summary.level, or any of the agent's condition statuses) or a new
//     crash is seen: that is news;
//   - when a figure crosses a band (the FDS column `9.8k/64k` at two significant digits, FD% in steps
//     of 5, threads at two significant digits, drops/min by decade) — but at most once per
//     minWriteIntervalMs (a minute), because a leak crosses bands on every tick;
//   - otherwise only to refresh the figures every refreshIntervalMs (default 10 minutes);
// so a pod in steady state costs at most one write per minute, and usually none.
import type {
  CrashRuntime,
  GoRuntime,
  ListenQueueRuntime,
  PressureLevel,
  ReportCondition,
  ReportRuntime,
  ReportSummary,
} from '../api/v1alpha1.ts';
import { PRESSURE_RANK, REPORT_LIMITS } from '../api/v1alpha1.ts';
import type { PodPressure } from './pressure.ts';
import { worstLevel } from './pressure.ts';

export type AgentCondition = 'FileDescriptorPressure' | 'ThreadPressure' | 'ListenQueuePressure' | 'GOMAXPROCSMismatch';

/** A number short enough for a printer column: 980, 9.8k, 64k, 1.2M — two significant digits, rounded down. */
export function bandedCount(value: number): string {
  if (!Number.isFinite(value)) return 'inf';
  if (value < 1000) return String(Math.max(0, Math.floor(value)));
  const units: [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [size, suffix] of units) {
    if (value < size) continue;
    const scaled = value / size;
    const text = scaled < 10 ? (Math.floor(scaled * 10) / 10).toFixed(1).replace(/\.0$/, '') : String(Math.floor(scaled));
    return `${text}${suffix}`;
  }
  return String(value);
}

/** Two significant digits, rounded down: the band a count is in. */
function band2(value: number): number {
  if (value < 100) return Math.floor(value);
  const magnitude = 10 ** (Math.floor(Math.log10(value)) - 1);
  return Math.floor(value / magnitude) * magnitude;
}

function decade(value: number): number {
  return value <= 0 ? 0 : Math.floor(Math.log10(value)) + 1;
}

/** The figures whose bands decide a write (not the summary itself: its numbers may be precise). */
export function summaryBands(summary: ReportSummary): string {
  return [
    summary.level,
    summary.fds ?? '',
    summary.fdPercent === undefined ? '' : Math.floor(summary.fdPercent / 5),
    summary.threads === undefined ? '' : band2(summary.threads),
    summary.dropsPerMinute === undefined ? '' : decade(summary.dropsPerMinute),
  ].join('|');
}

export interface PodRuntimeInputs {
  pressure: PodPressure;
  listenQueue?: { runtime: ListenQueueRuntime; message: string };
  go: { entry: GoRuntime; message?: string }[];
  lastCrash?: CrashRuntime;
  /** A crash seen recently enough to count as a Warning (the caller decides how recent). */
  recentCrash: boolean;
}

export interface ConditionDraft {
  type: AgentCondition;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max);
}

/** The agent's conditions: only for the pressures it has figures for. */
export function conditionDrafts(inputs: PodRuntimeInputs): ConditionDraft[] {
  const drafts: ConditionDraft[] = [];
  const { fileDescriptors, threads } = inputs.pressure;
  if (fileDescriptors) {
    const p = fileDescriptors.process;
    const who = p ? ` (pid ${p.pid} ${p.comm})` : '';
    drafts.push({
      type: 'FileDescriptorPressure',
      status: fileDescriptors.level === 'OK' ? 'False' : 'True',
      reason: fileDescriptors.level,
      message: `${fileDescriptors.open}/${fileDescriptors.limit} fds, ${fileDescriptors.percent}%${who}`,
    });
  }
  if (threads) {
    drafts.push({
      type: 'ThreadPressure',
      status: threads.level === 'OK' ? 'False' : 'True',
      reason: threads.level,
      message: `${threads.percent}% of ${threads.bindingLimit} (${threads.limit})`,
    });
  }
  if (inputs.listenQueue) {
    const level = inputs.listenQueue.runtime.level;
    drafts.push({ type: 'ListenQueuePressure', status: level === 'OK' ? 'False' : 'True', reason: level, message: inputs.listenQueue.message });
  }
  if (inputs.go.length > 0) {
    const mismatched = inputs.go.find((g) => g.entry.mismatch);
    drafts.push(
      mismatched
        ? { type: 'GOMAXPROCSMismatch', status: 'True', reason: 'QuotaExceeded', message: mismatched.message ?? 'GOMAXPROCS above the CPU quota' }
        : { type: 'GOMAXPROCSMismatch', status: 'False', reason: 'WithinQuota', message: 'GOMAXPROCS within the CPU quota' },
    );
  }
  for (const draft of drafts) {
    draft.reason = clip(draft.reason, REPORT_LIMITS.conditionReason);
    draft.message = clip(draft.message, REPORT_LIMITS.conditionMessage);
  }
  return drafts;
}

/** Runtime level: the pressures' worst; a GOMAXPROCS mismatch or a recent classified crash is a Warning. */
export function runtimeLevel(inputs: PodRuntimeInputs): PressureLevel {
  return worstLevel([
    inputs.pressure.level,
    inputs.listenQueue?.runtime.level,
    inputs.go.some((g) => g.entry.mismatch) ? 'Warning' : undefined,
    inputs.recentCrash ? 'Warning' : undefined,
  ]);
}

export function buildSummary(inputs: PodRuntimeInputs, level: PressureLevel): ReportSummary {
  const summary: ReportSummary = { level };
  const fds = inputs.pressure.fileDescriptors;
  if (fds) {
    summary.fds = clip(`${bandedCount(fds.open)}/${bandedCount(fds.limit)}`, 16);
    summary.fdPercent = Math.min(10000, Math.floor(fds.percent));
  }
  if (inputs.pressure.threads) summary.threads = inputs.pressure.threads.threads;
  if (inputs.listenQueue) summary.dropsPerMinute = inputs.listenQueue.runtime.dropsPerMinute;
  return summary;
}

export function buildRuntime(inputs: PodRuntimeInputs, observedTime: string): ReportRuntime {
  const runtime: ReportRuntime = { observedTime };
  const { fileDescriptors, threads, cpu } = inputs.pressure;
  if (fileDescriptors) runtime.fileDescriptors = fileDescriptors;
  if (threads) runtime.threads = threads;
  if (inputs.listenQueue) runtime.listenQueue = inputs.listenQueue.runtime;
  // Worst first: the most throttled containers (the report keeps REPORT_LIMITS.containers).
  const withQuota = cpu.filter((c) => c.quotaCores !== undefined || c.throttledPercent !== undefined);
  if (withQuota.length > 0) {
    runtime.cpu = [...withQuota].sort((a, b) => (b.throttledPercent ?? -1) - (a.throttledPercent ?? -1)).slice(0, REPORT_LIMITS.containers);
  }
  if (inputs.go.length > 0) {
    runtime.go = inputs.go
      .map((g) => g.entry)
      .sort((a, b) => Number(b.mismatch === true) - Number(a.mismatch === true))
      .slice(0, REPORT_LIMITS.containers);
  }
  if (inputs.lastCrash) runtime.lastCrash = inputs.lastCrash;
  return runtime;
}

/** Conditions with lastTransitionTime kept from the previous write while the status is unchanged. */
export function withTransitionTimes(
  drafts: readonly ConditionDraft[],
  previous: readonly ReportCondition[] | undefined,
  now: string,
): ReportCondition[] {
  return drafts.map((draft) => {
    const before = previous?.find((c) => c.type === draft.type);
    return { ...draft, lastTransitionTime: before && before.status === draft.status ? before.lastTransitionTime : now };
  });
}

export interface WrittenState {
  time: number;
  bands: string;
  /** type → status of each condition written. */
  conditionStatuses: string;
  crashKey: string;
}

export interface WriteDecisionInputs {
  now: number;
  last: WrittenState | undefined;
  next: Omit<WrittenState, 'time'>;
  level: PressureLevel;
  /** Whether the report exists (we wrote it, or another writer created it). */
  reportExists: boolean;
  reports: 'problems' | 'all';
  minWriteIntervalMs: number;
  refreshIntervalMs: number;
}

export type WriteReason = 'create' | 'level' | 'crash' | 'band' | 'refresh';

/** Why to write now, or undefined to leave the report as it is. */
export function writeDecision(inputs: WriteDecisionInputs): WriteReason | undefined {
  const { last, next, now } = inputs;
  if (!inputs.reportExists && last === undefined) {
    if (inputs.reports === 'all' || PRESSURE_RANK[inputs.level] >= PRESSURE_RANK.Warning) return 'create';
    return undefined;
  }
  if (!last) return 'create';
  const lastLevel = last.bands.split('|')[0];
  const nextLevel = next.bands.split('|')[0];
  if (lastLevel !== nextLevel || last.conditionStatuses !== next.conditionStatuses) return 'level';
  if (last.crashKey !== next.crashKey) return 'crash';
  const since = now - last.time;
  if (last.bands !== next.bands && since >= inputs.minWriteIntervalMs) return 'band';
  if (since >= inputs.refreshIntervalMs) return 'refresh';
  return undefined;
}

export function conditionStatuses(conditions: readonly { type: string; status: string }[]): string {
  return conditions.map((c) => `${c.type}=${c.status}`).sort().join(',');
}
