// A process is (pid, starttime): a pid freed and reused between two reads gets a new start time. The
// scan lists pids from cgroup.procs and then reads /proc/PID/...; a pid can die and be reused by a
// process of another pod in between, so the first time an identity is seen its membership is
// confirmed from /proc/PID/cgroup, read by path between opening a ProcessHandle and sampling through it:
// the handle is bound to the process, so if the sample still works afterwards, the path read in between
// was of that process. Known identities need no re-check: their handle fails once the process is gone,
// whatever now has its pid (handles that read by path compare the start time instead).
import type { ProcessHandle, ProcessSample } from '../readers/proc-handle.ts';
import type { ScratchReader } from '../readers/proc-file.ts';

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

export type Membership =
  | { kind: 'member'; sample: ProcessSample }
  | { kind: 'elsewhere' }
  | { kind: 'gone' };

/**
 * Whether the process of `handle`, started at `starttime`, belongs to the container whose cgroup leaf
 * is `leafName`: /proc/PID/cgroup by path, then a sample through the handle, which fails (or shows
 * another start time) if the process exited meanwhile — its pid, and so the path, may be another's.
 */
export function confirmMembership(
  reader: ScratchReader,
  procRoot: string,
  handle: ProcessHandle,
  starttime: number,
  leafName: string,
): Membership {
  const text = reader.readText(`${procRoot}/${handle.pid}/cgroup`);
  const sample = handle.sample(reader);
  if (text === undefined || sample === undefined || (sample.starttime !== undefined && sample.starttime !== starttime)) {
    return { kind: 'gone' };
  }
  return cgroupFileHasLeaf(text, leafName) ? { kind: 'member', sample } : { kind: 'elsewhere' };
}
