// pids controller (v1 and v2 alike): pids.current counts tasks (threads) in a cgroup and its
// descendants; pids.max is `max` or a number. fork/clone fails with EAGAIN when any cgroup on the way up
// is at its pids.max, so the whole chain from the container's leaf to the hierarchy root matters: the
// kubelet puts podPidsLimit on the pod cgroup, an operator may put one on kubepods or a QoS cgroup.
// The hierarchy root has neither file.
import type { TextSource } from './proc-file.ts';
import { parseLimitValue } from './proc-file.ts';

export interface PidsLevel {
  /** Path relative to the pids hierarchy root, for the scan's own use; never reported. */
  relativePath: string;
  max: number;
  current: number;
}

export function readPidsLevel(reader: TextSource, hierarchyRoot: string, relativePath: string): PidsLevel | undefined {
  const max = parseLimitValue(reader.readText(`${hierarchyRoot}/${relativePath}/pids.max`) ?? '');
  const current = parseLimitValue(reader.readText(`${hierarchyRoot}/${relativePath}/pids.current`) ?? '');
  return max === undefined || current === undefined ? undefined : { relativePath, max, current };
}

/**
 * pids.max and pids.current of `relativePath` and of each ancestor below the root, leaf first. `memo`
 * lets one tick share the reads of common ancestors (kubepods, the QoS cgroups) among all pods.
 */
export function readPidsChain(
  reader: TextSource,
  hierarchyRoot: string,
  relativePath: string,
  memo?: Map<string, PidsLevel | undefined>,
): PidsLevel[] {
  const chain: PidsLevel[] = [];
  let path = relativePath.replace(/^\/+|\/+$/g, '');
  while (path !== '') {
    let level: PidsLevel | undefined;
    if (memo?.has(path)) level = memo.get(path);
    else {
      level = readPidsLevel(reader, hierarchyRoot, path);
      memo?.set(path, level);
    }
    if (level) chain.push(level);
    const slash = path.lastIndexOf('/');
    path = slash < 0 ? '' : path.slice(0, slash);
  }
  return chain;
}
