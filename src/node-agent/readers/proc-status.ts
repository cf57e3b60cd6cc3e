// /proc/PID/status: the real UID (first field of `Uid:`), which RLIMIT_NPROC counts against,
// `Threads:`, and the CPUs of the affinity mask (`Cpus_allowed_list:`, what sched_getaffinity returns
// and what Go's GOMAXPROCS is capped at). Costlier than stat (~58 µs): read once per process identity,
// or node-wide only when some container process has a finite RLIMIT_NPROC (see uid-tasks.ts).
import { countCpuList } from '../gomaxprocs.ts';
import type { ScratchReader } from './proc-file.ts';

export interface ProcStatus {
  realUid: number;
  threads: number;
  /** CPUs in the affinity mask; absent when the kernel did not print the line. */
  affinityCpus?: number;
}

export function parseProcStatus(text: string): ProcStatus | undefined {
  const uid = /^Uid:\s+(\d+)/m.exec(text);
  const threads = /^Threads:\s+(\d+)/m.exec(text);
  if (!uid?.[1] || !threads?.[1]) return undefined;
  const status: ProcStatus = { realUid: Number(uid[1]), threads: Number(threads[1]) };
  const cpus = /^Cpus_allowed_list:\s*(\S+)/m.exec(text);
  if (cpus?.[1]) {
    const count = countCpuList(cpus[1]);
    if (count > 0) status.affinityCpus = count;
  }
  return status;
}

export function readProcStatus(reader: ScratchReader, procRoot: string, pid: number): ProcStatus | undefined {
  const text = reader.readText(`${procRoot}/${pid}/status`);
  return text === undefined ? undefined : parseProcStatus(text);
}
