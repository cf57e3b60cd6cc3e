// A process is (pid, starttime): a pid freed and reused between two reads gets a new start time. The
// scan lists pids from cgroup.procs and then reads /proc/PID/...; a pid can die and be reused by a
// process of another pod in between, so the first time an identity is seen its membership is
// confirmed from /proc/PID/cgroup, bracketed by two reads of its start time (same start time before
// and after ⇒ the cgroup read was of that process). Known identities need no re-check: a pid is never
// reused while its process lives, so a start time that still matches is still the same process.
import type { ScratchReader } from '../readers/proc-file.ts';
import { readProcStat } from '../readers/proc-stat.ts';

export function identityKey(pid: number, starttime: number): string {
  return `${pid}:${starttime}`;
}

/**
 * Whether some line of /proc/PID/cgroup (`id:controllers:path`) has `leafName` as a path component.
 * Matching a component rather than the whole path keeps working when the reader is in another cgroup
 * namespace (paths then start with `/..`) and when the runtime nests the payload below the container's
 * cgroup (crun's `.../crio-<id>.scope/container`). The leaf name carries the 64-hex container ID.
 */
export function cgroupFileHasLeaf(text: string, leafName: string): boolean {
  for (const line of text.split('\n')) {
    const second = line.indexOf(':', line.indexOf(':') + 1);
    if (second < 0) continue;
    const path = line.slice(second + 1);
    if (path.split('/').includes(leafName)) return true;
  }
  return false;
}

/**
 * Confirms that the process now at `pid`, started at `starttime`, belongs to the container whose cgroup
 * leaf is `leafName`. False when it does not, when the pid was reused meanwhile, or when it is gone.
 */
export function confirmMembership(
  reader: ScratchReader,
  procRoot: string,
  pid: number,
  starttime: number,
  leafName: string,
): boolean {
  const text = reader.readText(`${procRoot}/${pid}/cgroup`);
  if (text === undefined || !cgroupFileHasLeaf(text, leafName)) return false;
  const after = readProcStat(reader, procRoot, pid);
  return after !== undefined && after.starttime === starttime;
}
