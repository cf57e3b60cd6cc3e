// Which cgroup hierarchies a node has, found under a cgroup root given as a parameter (a hostPath mount
// of /sys/fs/cgroup in the agent, a temp dir in fixture tests):
//   v2 (unified): the root itself has cgroup.controllers; pids and cpu live there.
//   v1: one directory per hierarchy. cpu and cpuacct may share one mount (`cpu,cpuacct`, usually with
//       `cpu` and `cpuacct` symlinks to it) or be mounted apart (`cpu` and `cpuacct`, as on this
//       project's test machine); throttling and quota are in the cpu controller's files either way.
//   hybrid: v1 hierarchies plus `unified`; the kubelet and runtimes then use the v1 controllers.
import fs from 'node:fs';
import type { CgroupVersion } from '../readers/cgroup-cpu.ts';

export interface CgroupLayout {
  version: CgroupVersion;
  /** Hierarchy whose cgroup.procs lists a container's processes (pids, else cpu, else name=systemd). */
  procsRoot: string;
  /** Hierarchy with the pids controller, if any. */
  pidsRoot: string | undefined;
  /** Hierarchy with the cpu controller, if any. */
  cpuRoot: string | undefined;
}

function isDir(path: string): boolean {
  return fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

export function detectCgroupLayout(cgroupRoot: string): CgroupLayout {
  const root = cgroupRoot.replace(/\/+$/, '');
  if (fs.existsSync(`${root}/cgroup.controllers`)) {
    return { version: 'v2', procsRoot: root, pidsRoot: root, cpuRoot: root };
  }
  const first = (names: string[]): string | undefined =>
    names.map((name) => `${root}/${name}`).find((path) => isDir(path));
  const pidsRoot = first(['pids']);
  const cpuRoot = first(['cpu', 'cpu,cpuacct', 'cpuacct,cpu']);
  const procsRoot = pidsRoot ?? cpuRoot ?? first(['systemd']);
  if (procsRoot === undefined) throw new Error('no cgroup v1 or v2 hierarchy under the cgroup root');
  return { version: 'v1', procsRoot, pidsRoot, cpuRoot };
}
