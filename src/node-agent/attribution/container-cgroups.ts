// A container's cgroup directories in each hierarchy the scan reads, from the pod's cgroup UID and the
// container ID. Found by testing the exact names of kubelet-naming.ts for existence (a few stats per
// container, once: resolutions are cached until the directory disappears).
import fs from 'node:fs';
import type { CgroupLayout } from './cgroup-layout.ts';
import type { QosClass } from './kubelet-naming.ts';
import { containerCgroupNames, podCgroupCandidates } from './kubelet-naming.ts';

export interface ContainerCgroup {
  /** Path relative to each hierarchy root (the kubelet uses the same path in every v1 hierarchy). */
  relativePath: string;
  /** The pod's cgroup, relative to each hierarchy root. */
  podRelativePath: string;
  /** The last path component: what the container's processes show in /proc/PID/cgroup. */
  leafName: string;
  procsDir: string;
  pidsDir: string | undefined;
  cpuDir: string | undefined;
  driver: 'cgroupfs' | 'systemd';
  qos: QosClass;
}

function isDir(path: string): boolean {
  return fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

export interface ResolveOptions {
  qosHint?: QosClass;
  /** The kubelet's --cgroup-root in parts, e.g. [['kubelet']] for kind; default [[]]. */
  cgroupRoots?: readonly (readonly string[])[];
}

/** Finds the pod's cgroup directory (relative), or undefined when the pod has none on this node. */
export function resolvePodCgroup(
  layout: CgroupLayout,
  podUID: string,
  options: ResolveOptions = {},
): { relativePath: string; driver: 'cgroupfs' | 'systemd'; qos: QosClass } | undefined {
  for (const candidate of podCgroupCandidates(podUID, options.qosHint, options.cgroupRoots)) {
    if (isDir(`${layout.procsRoot}/${candidate.relativePath}`)) return candidate;
  }
  return undefined;
}

export function resolveContainerCgroup(
  layout: CgroupLayout,
  podUID: string,
  containerID: string,
  options: ResolveOptions = {},
): ContainerCgroup | undefined {
  const pod = resolvePodCgroup(layout, podUID, options);
  if (!pod) return undefined;
  for (const leafName of containerCgroupNames(containerID)) {
    const relativePath = `${pod.relativePath}/${leafName}`;
    if (!isDir(`${layout.procsRoot}/${relativePath}`)) continue;
    const inHierarchy = (root: string | undefined): string | undefined =>
      root !== undefined && isDir(`${root}/${relativePath}`) ? `${root}/${relativePath}` : undefined;
    return {
      relativePath,
      podRelativePath: pod.relativePath,
      leafName,
      procsDir: `${layout.procsRoot}/${relativePath}`,
      pidsDir: inHierarchy(layout.pidsRoot),
      cpuDir: inHierarchy(layout.cpuRoot),
      driver: pod.driver,
      qos: pod.qos,
    };
  }
  return undefined;
}
