// Node-wide task limits: kernel.threads-max (fork fails when nr_threads reaches it) and kernel.pid_max
// (pid allocation fails when every pid is taken; every thread holds one). Both compare against the
// node's task count, which /proc/loadavg's fourth field gives ("running/total" scheduling entities)
// for the price of one read instead of a walk of /proc.
import type { ScratchReader } from './proc-file.ts';
import { parseLimitValue } from './proc-file.ts';

export interface KernelTaskLimits {
  threadsMax: number;
  pidMax: number;
  /** Tasks (threads) on the node now. */
  tasks: number;
}

export function parseLoadavgTasks(text: string): number | undefined {
  const match = /^\S+ \S+ \S+ \d+\/(\d+) /.exec(text);
  return match?.[1] ? Number(match[1]) : undefined;
}

export function readKernelTaskLimits(reader: ScratchReader, procRoot: string): KernelTaskLimits | undefined {
  const threadsMax = parseLimitValue(reader.readText(`${procRoot}/sys/kernel/threads-max`) ?? '');
  const pidMax = parseLimitValue(reader.readText(`${procRoot}/sys/kernel/pid_max`) ?? '');
  const tasks = parseLoadavgTasks(reader.readText(`${procRoot}/loadavg`) ?? '');
  if (threadsMax === undefined || pidMax === undefined || tasks === undefined) return undefined;
  return { threadsMax, pidMax, tasks };
}
