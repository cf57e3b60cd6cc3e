// src/node-agent — the node agent's collection and evaluation below the API: readers/ (one file per
// /proc or cgroup source), attribution/ (pod + container → cgroup directories → processes), scan.ts
// (one tick over this node's pods) and pressure.ts (figures → levels, pure).
// May import src/api (types), src/policy and src/kube only — never @kubernetes/client-node directly
// (the agent's RSS budget is 100 MiB; the full client costs ~80 MiB).
export * from './scan.ts';
export * from './pressure.ts';
export { detectCgroupLayout, type CgroupLayout } from './attribution/cgroup-layout.ts';
export {
  resolveContainerCgroup,
  resolvePodCgroup,
  type ContainerCgroup,
  type ResolveOptions,
} from './attribution/container-cgroups.ts';
export {
  bareContainerID,
  cgroupPodUID,
  containerCgroupNames,
  podCgroupCandidates,
  QOS_CLASSES,
  type QosClass,
} from './attribution/kubelet-naming.ts';
export { cgroupFileHasLeaf, identityKey } from './attribution/process-identity.ts';
export { detectFdCountMethod, readFdCount, type FdCountMethod } from './readers/proc-fd-count.ts';
export { LimitsCache, parseProcLimits, type ProcLimits, type SoftHard } from './readers/proc-limits.ts';
export { parseProcStat, type ProcStat } from './readers/proc-stat.ts';
export { parseCfsQuota, parseCpuMax, parseCpuStat, type CpuQuota, type CpuThrottling } from './readers/cgroup-cpu.ts';
export type { PidsLevel } from './readers/cgroup-pids.ts';
export type { KernelTaskLimits } from './readers/kernel-limits.ts';
export { ScratchReader } from './readers/proc-file.ts';
