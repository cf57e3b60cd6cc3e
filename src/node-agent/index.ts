// src/node-agent — the node agent's collection and evaluation below the API: readers/ (one file per
// /proc or cgroup source), attribution/ (pod + container → cgroup directories → processes), scan.ts
// (one tick over this node's pods, cheapest reads first) and pressure.ts (figures → levels, pure).
// network.ts, gomaxprocs.ts, crash.ts (pure verdicts), report.ts (status and when to write it), metrics.ts and
// agent.ts (the runtime: informers, ticks, reports, /metrics; runAgent is what the CLI calls).
// Privacy: nothing here reads a command line or resolves an fd's target; of an environment only
// GOMAXPROCS/GODEBUG are kept (readers/environ.ts); figures carry pids, counts and comm only, never a path.
// May import src/api (types), src/policy and src/kube only — never @kubernetes/client-node directly
// (the agent's RSS budget is 100 MiB; the full client costs ~80 MiB).
export * from './scan.ts';
export * from './pressure.ts';
export * from './network.ts';
export * from './gomaxprocs.ts';
export * from './crash.ts';
export * from './report.ts';
export { AgentMetrics, type PodMetricFigures } from './metrics.ts';
export { policyMatcher, specGoEnvironment, type PodSpecLike, type PolicyMatcher } from './pod-spec.ts';
export { NodeAgent, runAgent, type AgentPod, type AgentTickResult, type RunAgentOptions } from './agent.ts';
export { parseNetstat, parseSockstat, readNetnsCounters, readNetnsIdentity, LISTEN_COUNTER_NAMES, type ListenCounters, type NetnsCounters, type SocketCounts } from './readers/netstat.ts';
export { parseProcNetTcp, parseSsListening, readListeners, readListenersFromProc, readListenersInNetns, type ListenSocket, type NetnsListeners } from './readers/listeners.ts';
export { extractGoEnvironment, readGoEnvironment, type GoEnvironment } from './readers/environ.ts';
export { GoBuildInfoCache, parseModinfo, readGoBuildInfoFromFd, type GoBuildInfo } from './readers/go-buildinfo.ts';
export {
  CRASH_SIGNATURES, findLastSignature, parseCriMessages, podLogDir, previousContainerLog, readLogSignature,
  readPreviousLogSignature, redactPaths, type CrashSignatureKind, type LogSignature, type PodLogRef,
} from './readers/pod-logs.ts';
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
export type { KernelTaskLimits } from './readers/kernel-limits.ts';
export { isGone, OpenFiles, ScratchReader, type TextSource } from './readers/proc-file.ts';
export { ProcessHandle } from './readers/proc-handle.ts';
export { parseProcStatus, type ProcStatus } from './readers/proc-status.ts';
export { parseLoadavgTasks } from './readers/kernel-limits.ts';
export { countTasksByUid } from './readers/uid-tasks.ts';
