// One tick of the node agent's collection: for each pod's containers, the processes in the container's
// cgroup and, per process, its fd count, thread count and (cached) limits; then the pod's pids.max chain
// and each container's CPU quota and throttling; then node-wide limits; last, and only when some process
// has a finite RLIMIT_NPROC under a non-root UID, the node-wide walk of /proc that counts that UID's
// tasks — the one expensive read, so cheapest first.
//
// Synchronous on purpose: procfs and cgroupfs reads never wait on a disk, and a sync syscall costs a
// fraction of a libuv threadpool round trip, which is what matters at thousands of files per tick.
// Privacy: reads stat, status, limits, comm and cgroup of a process — never cmdline or environ, never
// an fd's target. Paths stay inside the scanner; figures carry pids, counts and comm only.
import type { CgroupLayout } from './attribution/cgroup-layout.ts';
import { detectCgroupLayout } from './attribution/cgroup-layout.ts';
import type { ContainerCgroup, ResolveOptions } from './attribution/container-cgroups.ts';
import { resolveContainerCgroup } from './attribution/container-cgroups.ts';
import { bareContainerID, type QosClass } from './attribution/kubelet-naming.ts';
import { confirmMembership } from './attribution/process-identity.ts';
import type { CpuQuota, CpuThrottling } from './readers/cgroup-cpu.ts';
import { readCpuQuota, readCpuThrottling } from './readers/cgroup-cpu.ts';
import type { PidsLevel } from './readers/cgroup-pids.ts';
import { readPidsChain } from './readers/cgroup-pids.ts';
import { readCgroupProcs } from './readers/cgroup-procs.ts';
import type { KernelTaskLimits } from './readers/kernel-limits.ts';
import { readKernelTaskLimits } from './readers/kernel-limits.ts';
import { readComm } from './readers/proc-comm.ts';
import type { FdCountMethod } from './readers/proc-fd-count.ts';
import { detectFdCountMethod, readFdCount } from './readers/proc-fd-count.ts';
import { ScratchReader } from './readers/proc-file.ts';
import type { ProcLimits, SoftHard } from './readers/proc-limits.ts';
import { LimitsCache } from './readers/proc-limits.ts';
import { readProcStat } from './readers/proc-stat.ts';
import { readProcStatus } from './readers/proc-status.ts';
import { countTasksByUid } from './readers/uid-tasks.ts';

export interface ContainerTarget {
  name: string;
  /** As in pod status (`containerd://<id>`) or bare. */
  containerID: string;
}

export interface PodTarget {
  /** The UID the pod's cgroup is named after (cgroupPodUID: the config hash for static pods). */
  uid: string;
  qos?: QosClass;
  containers: readonly ContainerTarget[];
}

export interface ProcessFigures {
  pid: number;
  starttime: number;
  comm: string;
  container: string;
  fds: number;
  threads: number;
  nofile: SoftHard;
  nproc: SoftHard;
  /** Read only when RLIMIT_NPROC is finite (it is what that limit counts against). */
  realUid?: number;
  /** Known Go program (Go's 10000-thread cap applies); left unset by the scan, set by a Go detector. */
  go?: boolean;
}

export interface ContainerFigures {
  name: string;
  /** Whether the container's cgroup was found on this node. */
  found: boolean;
  processes: number;
  cpuQuota?: CpuQuota;
  cpuThrottling?: CpuThrottling;
}

export interface PodFigures {
  uid: string;
  containers: ContainerFigures[];
  processes: ProcessFigures[];
  /** pids.max/pids.current from every container leaf up to the hierarchy root, deduplicated, leaf first. */
  pidsChain: PidsLevel[];
}

export interface NodeFigures {
  kernel: KernelTaskLimits | undefined;
  /** Tasks per real UID on the whole node, for the UIDs of processes with a finite RLIMIT_NPROC. */
  tasksByUid: ReadonlyMap<number, number>;
}

export interface TickFigures {
  /** Milliseconds (the caller's clock, e.g. Date.now()). */
  time: number;
  node: NodeFigures;
  pods: PodFigures[];
}

export interface ScannerOptions {
  procRoot?: string;
  cgroupRoot?: string;
  /** Default: detected on procRoot (stat where the kernel counts, else readdir). */
  fdCountMethod?: FdCountMethod;
  resolve?: ResolveOptions;
}

interface KnownProcess {
  starttime: number;
  containerKey: string;
  comm: string;
  realUid: number | undefined;
  seen: number;
}

export interface ScanCounters {
  /** New process identities confirmed from /proc/PID/cgroup. */
  confirmed: number;
  /** Listed in a container's cgroup.procs but found to be another process (pid reused) or gone. */
  rejected: number;
  /** Processes that vanished between listing and reading. */
  vanished: number;
}

export class Scanner {
  readonly procRoot: string;
  readonly layout: CgroupLayout;
  readonly fdCountMethod: FdCountMethod;
  readonly limits: LimitsCache;
  readonly counters: ScanCounters = { confirmed: 0, rejected: 0, vanished: 0 };
  private readonly reader = new ScratchReader();
  private readonly resolveOptions: ResolveOptions;
  private readonly cgroups = new Map<string, ContainerCgroup>();
  private readonly known = new Map<number, KnownProcess>();
  private readonly pids: number[] = [];
  private generation = 0;

  constructor(options: ScannerOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.layout = detectCgroupLayout(options.cgroupRoot ?? '/sys/fs/cgroup');
    this.fdCountMethod = options.fdCountMethod ?? detectFdCountMethod(this.procRoot);
    this.limits = new LimitsCache(this.reader, this.procRoot);
    this.resolveOptions = options.resolve ?? {};
  }

  tick(pods: readonly PodTarget[], time: number = Date.now()): TickFigures {
    this.generation++;
    const pidsMemo = new Map<string, PidsLevel | undefined>();
    const figures: PodFigures[] = [];
    const nprocUids = new Set<number>();
    for (const pod of pods) {
      const podFigures: PodFigures = { uid: pod.uid, containers: [], processes: [], pidsChain: [] };
      const chainSeen = new Set<string>();
      for (const container of pod.containers) {
        const cgroup = this.containerCgroup(pod, container);
        const containerFigures: ContainerFigures = { name: container.name, found: false, processes: 0 };
        podFigures.containers.push(containerFigures);
        if (!cgroup) continue;
        this.pids.length = 0;
        if (readCgroupProcs(this.reader, cgroup.procsDir, this.pids) === undefined) {
          this.cgroups.delete(this.containerKey(pod, container));
          continue;
        }
        containerFigures.found = true;
        const containerKey = this.containerKey(pod, container);
        for (const pid of this.pids) {
          const process = this.readProcess(pid, containerKey, cgroup.leafName, container.name);
          if (!process) continue;
          podFigures.processes.push(process);
          containerFigures.processes++;
          if (process.realUid !== undefined && process.realUid !== 0) nprocUids.add(process.realUid);
        }
        if (cgroup.pidsDir !== undefined && this.layout.pidsRoot !== undefined) {
          for (const level of readPidsChain(this.reader, this.layout.pidsRoot, cgroup.relativePath, pidsMemo)) {
            if (chainSeen.has(level.relativePath)) continue;
            chainSeen.add(level.relativePath);
            podFigures.pidsChain.push(level);
          }
        }
        if (cgroup.cpuDir !== undefined) {
          containerFigures.cpuQuota = readCpuQuota(this.reader, cgroup.cpuDir, this.layout.version);
          containerFigures.cpuThrottling = readCpuThrottling(this.reader, cgroup.cpuDir, this.layout.version);
        }
      }
      // Leaf first: container levels (deepest paths) before the pod, the pod before its ancestors.
      podFigures.pidsChain.sort((a, b) => depth(b.relativePath) - depth(a.relativePath));
      figures.push(podFigures);
    }
    const kernel = readKernelTaskLimits(this.reader, this.procRoot);
    const tasksByUid = countTasksByUid(this.reader, this.procRoot, nprocUids);
    this.forgetUnseen();
    return { time, node: { kernel, tasksByUid }, pods: figures };
  }

  /**
   * Re-reads a process's limits (cached ones may predate a setrlimit/prlimit) — call before raising a
   * level on the strength of them. Undefined when the process is gone or is no longer that process.
   */
  refreshLimits(pid: number, starttime: number): ProcLimits | undefined {
    const known = this.known.get(pid);
    if (!known || known.starttime !== starttime) return undefined;
    return this.limits.refresh(pid, starttime);
  }

  private containerKey(pod: PodTarget, container: ContainerTarget): string {
    return `${pod.uid}/${bareContainerID(container.containerID)}`;
  }

  private containerCgroup(pod: PodTarget, container: ContainerTarget): ContainerCgroup | undefined {
    const key = this.containerKey(pod, container);
    let cgroup = this.cgroups.get(key);
    if (!cgroup) {
      cgroup = resolveContainerCgroup(this.layout, pod.uid, container.containerID, {
        ...this.resolveOptions,
        ...(pod.qos ? { qosHint: pod.qos } : {}),
      });
      if (cgroup) this.cgroups.set(key, cgroup);
    }
    return cgroup;
  }

  private readProcess(pid: number, containerKey: string, leafName: string, container: string): ProcessFigures | undefined {
    const known = this.known.get(pid);
    let fds: number | undefined;
    let starttime: number;
    let threads: number;
    let entry: KnownProcess;
    if (known && known.containerKey === containerKey) {
      // fds first, then the start time: if it still matches, the process that had these fds is the
      // one we confirmed earlier (it was alive at both reads, so the pid was not reused in between).
      fds = readFdCount(this.procRoot, pid, this.fdCountMethod);
      const stat = readProcStat(this.reader, this.procRoot, pid);
      if (fds === undefined || stat === undefined) return this.vanished(pid);
      if (stat.starttime !== known.starttime) return this.readNewProcess(pid, containerKey, leafName, container);
      starttime = stat.starttime;
      threads = stat.threads;
      entry = known;
    } else {
      return this.readNewProcess(pid, containerKey, leafName, container);
    }
    entry.seen = this.generation;
    return this.withLimits(pid, starttime, threads, fds, entry, container);
  }

  private readNewProcess(pid: number, containerKey: string, leafName: string, container: string): ProcessFigures | undefined {
    // start time, fds, cgroup, start time again: equal start times bracket the other two reads.
    const stat = readProcStat(this.reader, this.procRoot, pid);
    if (stat === undefined) return this.vanished(pid);
    const fds = readFdCount(this.procRoot, pid, this.fdCountMethod);
    const comm = readComm(this.reader, this.procRoot, pid);
    if (fds === undefined || comm === undefined) return this.vanished(pid);
    if (!confirmMembership(this.reader, this.procRoot, pid, stat.starttime, leafName)) {
      this.counters.rejected++;
      this.known.delete(pid);
      return undefined;
    }
    this.counters.confirmed++;
    const entry: KnownProcess = { starttime: stat.starttime, containerKey, comm, realUid: undefined, seen: this.generation };
    this.known.set(pid, entry);
    return this.withLimits(pid, stat.starttime, stat.threads, fds, entry, container);
  }

  private withLimits(
    pid: number,
    starttime: number,
    threads: number,
    fds: number,
    entry: KnownProcess,
    container: string,
  ): ProcessFigures | undefined {
    const limits = this.limits.get(pid, starttime);
    if (!limits) return this.vanished(pid);
    if (entry.realUid === undefined && Number.isFinite(limits.nproc.soft)) {
      entry.realUid = readProcStatus(this.reader, this.procRoot, pid)?.realUid;
    }
    const figures: ProcessFigures = {
      pid,
      starttime,
      comm: entry.comm,
      container,
      fds,
      threads,
      nofile: limits.nofile,
      nproc: limits.nproc,
    };
    if (entry.realUid !== undefined) figures.realUid = entry.realUid;
    return figures;
  }

  private vanished(pid: number): undefined {
    this.counters.vanished++;
    this.known.delete(pid);
    return undefined;
  }

  private forgetUnseen(): void {
    for (const [pid, entry] of this.known) if (entry.seen < this.generation) this.known.delete(pid);
    this.limits.prune();
  }
}

function depth(path: string): number {
  let n = 0;
  for (const char of path) if (char === '/') n++;
  return n;
}
