// CPU quota and throttling of one cgroup: the container's own leaf, because that is the one Go >= 1.25
// reads to pick GOMAXPROCS (a tighter parent is ignored, golang/go#81180).
//   v1 (cpu controller): cpu.cfs_quota_us (-1 = none) / cpu.cfs_period_us; cpu.stat nr_periods,
//      nr_throttled, throttled_time (nanoseconds).
//   v2: cpu.max "$MAX $PERIOD" (MAX may be `max`); cpu.stat nr_periods, nr_throttled, throttled_usec.
import type { TextSource } from './proc-file.ts';

export interface CpuQuota {
  /** Cores' worth of CPU time per period; undefined when unlimited. */
  quotaCores: number | undefined;
  quotaMicros: number | undefined;
  periodMicros: number;
}

export interface CpuThrottling {
  periods: number;
  throttledPeriods: number;
  throttledMicros: number;
}

export type CgroupVersion = 'v1' | 'v2';

export function parseCpuMax(text: string): CpuQuota | undefined {
  const [max, period] = text.trim().split(/\s+/);
  const periodMicros = Number(period);
  if (!max || !Number.isFinite(periodMicros) || periodMicros <= 0) return undefined;
  if (max === 'max') return { quotaCores: undefined, quotaMicros: undefined, periodMicros };
  const quotaMicros = Number(max);
  if (!Number.isFinite(quotaMicros)) return undefined;
  return { quotaCores: quotaMicros / periodMicros, quotaMicros, periodMicros };
}

export function parseCfsQuota(quotaText: string, periodText: string): CpuQuota | undefined {
  const quota = Number(quotaText.trim());
  const periodMicros = Number(periodText.trim());
  if (!Number.isFinite(quota) || !Number.isFinite(periodMicros) || periodMicros <= 0) return undefined;
  if (quota < 0) return { quotaCores: undefined, quotaMicros: undefined, periodMicros };
  return { quotaCores: quota / periodMicros, quotaMicros: quota, periodMicros };
}

export function parseCpuStat(text: string, version: CgroupVersion): CpuThrottling | undefined {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    if (key && value) fields.set(key, Number(value));
  }
  const periods = fields.get('nr_periods');
  const throttledPeriods = fields.get('nr_throttled');
  const throttledMicros =
    version === 'v2' ? fields.get('throttled_usec') : divide(fields.get('throttled_time'), 1000);
  // v2 without the cpu controller enabled has only usage_usec & co.: no throttling figures.
  if (periods === undefined || throttledPeriods === undefined || throttledMicros === undefined) return undefined;
  return { periods, throttledPeriods, throttledMicros };
}

function divide(value: number | undefined, by: number): number | undefined {
  return value === undefined ? undefined : value / by;
}

/** `dir` is the absolute directory of the cgroup in the hierarchy that has the cpu controller. */
export function readCpuQuota(reader: TextSource, dir: string, version: CgroupVersion): CpuQuota | undefined {
  if (version === 'v2') {
    const text = reader.readText(`${dir}/cpu.max`);
    return text === undefined ? undefined : parseCpuMax(text);
  }
  const quota = reader.readText(`${dir}/cpu.cfs_quota_us`);
  if (quota === undefined) return undefined;
  const period = reader.readText(`${dir}/cpu.cfs_period_us`);
  return period === undefined ? undefined : parseCfsQuota(quota, period);
}

export function readCpuThrottling(reader: TextSource, dir: string, version: CgroupVersion): CpuThrottling | undefined {
  const text = reader.readText(`${dir}/cpu.stat`);
  return text === undefined ? undefined : parseCpuStat(text, version);
}
