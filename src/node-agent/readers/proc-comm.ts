// /proc/PID/comm: the task name (at most 15 bytes), the only thing we say about a process besides its
// pid. Never the command line (privacy, DESIGN.md). Read only for a process a report names.
import type { ScratchReader } from './proc-file.ts';

export function readComm(reader: ScratchReader, procRoot: string, pid: number): string | undefined {
  const bytes = reader.readRecord(`${procRoot}/${pid}/comm`);
  if (bytes === undefined) return undefined;
  return bytes.toString('utf8').replace(/\n$/, '');
}
