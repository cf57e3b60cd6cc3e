// /proc/PID/status: the real UID (first field of `Uid:`), which RLIMIT_NPROC counts against, and
// `Threads:`. Costlier than stat (~58 µs): read once per process identity, or node-wide only when some
// container process has a finite RLIMIT_NPROC (see uid-tasks.ts).
import type { ScratchReader } from './proc-file.ts';

export interface ProcStatus {
  realUid: number;
  threads: number;
}

export function parseProcStatus(text: string): ProcStatus | undefined {
  const uid = /^Uid:\s+(\d+)/m.exec(text);
  const threads = /^Threads:\s+(\d+)/m.exec(text);
  if (!uid?.[1] || !threads?.[1]) return undefined;
  return { realUid: Number(uid[1]), threads: Number(threads[1]) };
}

export function readProcStatus(reader: ScratchReader, procRoot: string, pid: number): ProcStatus | undefined {
  const text = reader.readText(`${procRoot}/${pid}/status`);
  return text === undefined ? undefined : parseProcStatus(text);
}
