// One tick of the node agent's collection: for each pod's containers, the processes in the container's
// cgroup and, per process, its fd count, thread count and (cached) limits; then the pod's pids.max chain
// and each container's CPU quota and throttling; then node-wide limits; last, and only when some process
// has a finite RLIMIT_NPROC under a non-root UID that the node's task count could come near, the
// node-wide walk of /proc that counts that UID's tasks — the one expensive read, so cheapest first.
//
// Synchronous on purpose: procfs and cgroupfs reads never wait on a disk, and a sync syscall costs a
// fraction of a libuv threadpool round trip, which is what matters at thousands of files per tick.
// Processes are held open (ProcessHandle: two fstat calls per tick, and identity for free) and so are
// the cgroup files read every tick (OpenFiles); call close() when done with a scanner.
// Privacy: reads stat, status, limits, comm and cgroup of a process — never cmdline or environ, never
// an fd's target. Paths stay inside the scanner; figures carry pids, counts and comm only.
import type { PressureLevel } from '../api/v1alpha1.ts';
import type { CgroupLayout } from './attribution/cgroup-layout.ts';
import { detectCgroupLayout } from './attribution/cgroup-layout.ts';
import type { ContainerCgroup, ResolveOptions } from './attribution/container-cgroups.ts';
import { resolveContainerCgroup } from './attribution/container-cgroups.ts';
import { bareContainerID, type QosClass } from './attribution/kubelet-naming.ts';
import { confirmMembership } from './attribution/process-identity.ts';
import { isOutOfFds, ProcessHandle } from './readers/proc-handle.ts';
import type { CpuQuota, CpuThrottling } from './readers/cgroup-cpu.ts';
import { readCpuQuota, readCpuThrottling } from './readers/cgroup-cpu.ts';
import type { PidsLevel } from './readers/cgroup-pids.ts';
import { readPidsChain } from './readers/cgroup-pids.ts';
import { readCgroupProcs } from './readers/cgroup-procs.ts';
import type { KernelTaskLimits } from './readers/kernel-limits.ts';
import { readKernelTaskLimits } from './readers/kernel-limits.ts';
import { readComm } from './readers/proc-comm.ts';
import type { FdCountMethod } from './readers/proc-fd-count.ts';
import { detectFdCountMethod } from './readers/proc-fd-count.ts';
import { OpenFiles, ScratchReader } from './readers/proc-file.ts';
import type { ProcLimits, SoftHard } from './readers/proc-limits.ts';
import { LimitsCache, readProcLimits } from './readers/proc-limits.ts';
import { readProcStatus } from './readers/proc-status.ts';
import { countTasksByUid } from './readers/uid-tasks.ts';
import type { PodHistory, PodPressure, ResolvedThresholds } from './pressure.ts';
import { evaluatePod, fileDescriptorPressure, raisesLevel, threadPressure, worstLevel } from './pressure.ts';

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
  pidsChain: PidsLimit[];
}

/** One cgroup's pids figures, named by its place rather than its path (figures carry no paths). */
export interface PidsLimit {
  scope: 'container' | 'pod' | 'ancestor';
  max: number;
  current: number;
}

export interface NodeFigures {
  kernel: KernelTaskLimits | undefined;
  /**
   * Tasks per real UID on the whole node, for the non-root UIDs of processes with a finite
   * RLIMIT_NPROC. Counted over all of /proc when the node's task count reaches nprocTallyFromPercent of
   * the smallest such limit; below that the UID cannot be near its limit, and the figure is only the
   * UID's tasks in the scanned pods (a lower bound), which spares the walk on nearly every tick.
   */
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
  /** See NodeFigures.tasksByUid; default 50 (below any sensible warning threshold). */
  nprocTallyFromPercent?: number;
  /**
   * Processes held open (two fds each); the rest are read by path. Default: a quarter of the agent's
   * own soft RLIMIT_NOFILE beyond 512 fds kept for everything else.
   */
  maxHeldProcesses?: number;
}

function defaultMaxHeldProcesses(): number {
  const soft = readProcLimits(new ScratchReader(), '/proc', process.pid)?.nofile.soft ?? 1024;
  return Number.isFinite(soft) ? Math.max(0, Math.floor((soft - 512) / 4)) : 1 << 20;
}

interface KnownProcess {
  handle: ProcessHandle;
  /** Whether the handle was opened holding fds (counts against maxHeldProcesses until forgotten). */
  held: boolean;
  starttime: number;
  containerKey: string;
  comm: string;
  realUid: number | undefined;
  seen: number;
}

export interface ScanCounters {
  /** New process identities confirmed from /proc/PID/cgroup. */
  confirmed: number;
  /** Listed in a container's cgroup.procs but found to belong elsewhere (a pid reused meanwhile). */
  rejected: number;
  /** Processes that exited between listing and reading. */
  vanished: number;
  /** Processes skipped because the agent itself was out of fds. */
  outOfFds: number;
}

export class Scanner {
  readonly procRoot: string;
  readonly layout: CgroupLayout;
  readonly fdCountMethod: FdCountMethod;
  readonly limits: LimitsCache;
  readonly counters: ScanCounters = { confirmed: 0, rejected: 0, vanished: 0, outOfFds: 0 };
  private readonly reader = new ScratchReader();
  /** A container's pids and cpu files, kept open: re-read every tick. */
  private readonly cgroupFiles = new OpenFiles(this.reader);
  private readonly resolveOptions: ResolveOptions;
  private readonly nprocTallyShare: number;
  private readonly maxHeldProcesses: number;
  private heldProcesses = 0;
  private readonly cgroups = new Map<string, { cgroup: ContainerCgroup; used: number }>();
  private readonly known = new Map<number, KnownProcess>();
  private readonly pids: number[] = [];
  private generation = 0;

  constructor(options: ScannerOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.layout = detectCgroupLayout(options.cgroupRoot ?? '/sys/fs/cgroup');
    this.fdCountMethod = options.fdCountMethod ?? detectFdCountMethod(this.procRoot);
    this.limits = new LimitsCache(this.reader, this.procRoot);
    this.resolveOptions = options.resolve ?? {};
    this.nprocTallyShare = (options.nprocTallyFromPercent ?? 50) / 100;
    this.maxHeldProcesses = options.maxHeldProcesses ?? defaultMaxHeldProcesses();
    // Out of fds for a read by path: the held cgroup files go first (they are reopened next tick).
    this.reader.onOutOfFds = () => {
      const held = this.cgroupFiles.size;
      this.cgroupFiles.closeAll();
      return held > 0;
    };
  }

  tick(pods: readonly PodTarget[], time: number = Date.now()): TickFigures {
    this.generation++;
    const pidsMemo = new Map<string, PidsLevel | undefined>();
    const figures: PodFigures[] = [];
    // Per non-root UID with a finite RLIMIT_NPROC: its smallest limit and its tasks seen in pods.
    const nprocUids = new Map<number, { smallestLimit: number; visibleTasks: number }>();
    for (const pod of pods) {
      const podFigures: PodFigures = { uid: pod.uid, containers: [], processes: [], pidsChain: [] };
      const chain = new Map<string, PidsLimit>();
      for (const container of pod.containers) {
        const containerKey = this.containerKey(pod, container);
        const cgroup = this.containerCgroup(containerKey, pod, container);
        const containerFigures: ContainerFigures = { name: container.name, found: false, processes: 0 };
        podFigures.containers.push(containerFigures);
        if (!cgroup) continue;
        this.pids.length = 0;
        if (readCgroupProcs(this.reader, cgroup.procsDir, this.layout.version === 'v2', this.pids) === undefined) {
          this.cgroups.delete(containerKey);
          continue;
        }
        containerFigures.found = true;
        for (const pid of this.pids) {
          let process: ProcessFigures | undefined;
          try {
            process = this.readProcess(pid, containerKey, cgroup.leafName, container.name);
          } catch (error) {
            // The agent's own fd shortage must not end the tick for every other process.
            if (!isOutOfFds(error)) throw error;
            this.counters.outOfFds++;
            this.forget(pid);
          }
          if (!process) continue;
          podFigures.processes.push(process);
          containerFigures.processes++;
          if (process.realUid !== undefined && process.realUid !== 0 && Number.isFinite(process.nproc.soft)) {
            const entry = nprocUids.get(process.realUid) ?? { smallestLimit: Infinity, visibleTasks: 0 };
            entry.smallestLimit = Math.min(entry.smallestLimit, process.nproc.soft);
            entry.visibleTasks += process.threads;
            nprocUids.set(process.realUid, entry);
          }
        }
        if (cgroup.pidsDir !== undefined && this.layout.pidsRoot !== undefined) {
          for (const level of readPidsChain(this.cgroupFiles, this.layout.pidsRoot, cgroup.relativePath, pidsMemo)) {
            const scope =
              level.relativePath === cgroup.relativePath ? 'container' : level.relativePath === cgroup.podRelativePath ? 'pod' : 'ancestor';
            chain.set(level.relativePath, { scope, max: level.max, current: level.current });
          }
        }
        if (cgroup.cpuDir !== undefined) {
          const quota = readCpuQuota(this.cgroupFiles, cgroup.cpuDir, this.layout.version);
          const throttling = readCpuThrottling(this.cgroupFiles, cgroup.cpuDir, this.layout.version);
          if (quota) containerFigures.cpuQuota = quota;
          if (throttling) containerFigures.cpuThrottling = throttling;
        }
      }
      // Leaf first: container levels (deepest paths) before the pod, the pod before its ancestors.
      for (const path of [...chain.keys()].sort((a, b) => depth(b) - depth(a))) podFigures.pidsChain.push(chain.get(path)!);
      figures.push(podFigures);
    }
    const kernel = readKernelTaskLimits(this.reader, this.procRoot);
    const tally = new Set<number>();
    const tasksByUid = new Map<number, number>();
    for (const [uid, { smallestLimit, visibleTasks }] of nprocUids) {
      if (kernel === undefined || kernel.tasks >= smallestLimit * this.nprocTallyShare) tally.add(uid);
      else tasksByUid.set(uid, visibleTasks);
    }
    for (const [uid, count] of countTasksByUid(this.reader, this.procRoot, tally)) tasksByUid.set(uid, count);
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
    const limits = this.limits.refresh(pid, starttime);
    // Read by path: only trust it if the handle shows the same process is still there.
    const sample = known.handle.sample(this.reader);
    return sample !== undefined && (sample.starttime === undefined || sample.starttime === starttime) ? limits : undefined;
  }

  /** Releases the fds held on processes and cgroup files. */
  close(): void {
    for (const pid of [...this.known.keys()]) this.forget(pid);
    this.cgroupFiles.closeAll();
  }

  /** fds the scanner holds open: two per process watched, plus cgroup files. */
  get openFds(): number {
    let n = this.cgroupFiles.size;
    for (const known of this.known.values()) if (known.handle.held) n += this.fdCountMethod === 'stat' ? 2 : 1;
    return n;
  }

  private containerKey(pod: PodTarget, container: ContainerTarget): string {
    return `${pod.uid}/${bareContainerID(container.containerID)}`;
  }

  private containerCgroup(key: string, pod: PodTarget, container: ContainerTarget): ContainerCgroup | undefined {
    const cached = this.cgroups.get(key);
    if (cached) {
      cached.used = this.generation;
      return cached.cgroup;
    }
    const cgroup = resolveContainerCgroup(this.layout, pod.uid, container.containerID, {
      ...this.resolveOptions,
      ...(pod.qos ? { qosHint: pod.qos } : {}),
    });
    if (cgroup) this.cgroups.set(key, { cgroup, used: this.generation });
    return cgroup;
  }

  private readProcess(pid: number, containerKey: string, leafName: string, container: string): ProcessFigures | undefined {
    const known = this.known.get(pid);
    if (known) {
      if (known.containerKey === containerKey) {
        // Through the handle: fails once the process has exited, whoever has the pid now.
        const sample = known.handle.sample(this.reader);
        if (sample !== undefined && (sample.starttime === undefined || sample.starttime === known.starttime)) {
          known.seen = this.generation;
          return this.figures(pid, known, sample.threads, sample.fds, container);
        }
      }
      // Exited (its pid may now be a new process's), or listed under another container than before.
      this.forget(pid);
    }
    return this.readNewProcess(pid, containerKey, leafName, container);
  }

  private readNewProcess(pid: number, containerKey: string, leafName: string, container: string): ProcessFigures | undefined {
    // Open a handle, read by path (stat, comm, limits, status, cgroup), then sample through the handle
    // (confirmMembership): a handle still working shows the path reads were of this process.
    const handle = ProcessHandle.open(this.procRoot, pid, this.fdCountMethod, this.heldProcesses < this.maxHeldProcesses);
    const stat = handle?.readStat(this.reader);
    if (!handle || !stat) return this.vanished(pid, handle);
    const comm = readComm(this.reader, this.procRoot, pid);
    const limits = this.limits.refresh(pid, stat.starttime);
    const realUid =
      limits && Number.isFinite(limits.nproc.soft) ? readProcStatus(this.reader, this.procRoot, pid)?.realUid : undefined;
    const membership = confirmMembership(this.reader, this.procRoot, handle, stat.starttime, leafName);
    if (comm === undefined || limits === undefined || membership.kind !== 'member') {
      if (membership.kind === 'elsewhere') this.counters.rejected++;
      else this.counters.vanished++;
      handle.close();
      this.limits.forget(pid, stat.starttime);
      return undefined;
    }
    this.counters.confirmed++;
    const entry: KnownProcess = {
      handle,
      held: handle.held,
      starttime: stat.starttime,
      containerKey,
      comm,
      realUid,
      seen: this.generation,
    };
    this.known.set(pid, entry);
    if (entry.held) this.heldProcesses++;
    return this.figures(pid, entry, membership.sample.threads, membership.sample.fds, container);
  }

  private figures(pid: number, entry: KnownProcess, threads: number, fds: number, container: string): ProcessFigures | undefined {
    const limits = this.limits.get(pid, entry.starttime);
    if (!limits) return this.vanished(pid, undefined);
    const figures: ProcessFigures = {
      pid,
      starttime: entry.starttime,
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

  private vanished(pid: number, handle: ProcessHandle | undefined): undefined {
    this.counters.vanished++;
    handle?.close();
    this.forget(pid);
    return undefined;
  }

  private forget(pid: number): void {
    const known = this.known.get(pid);
    if (!known) return;
    if (known.held) this.heldProcesses--;
    known.handle.close();
    this.limits.forget(pid, known.starttime);
    this.known.delete(pid);
  }

  private forgetUnseen(): void {
    for (const [pid, entry] of this.known) if (entry.seen < this.generation) this.forget(pid);
    for (const [key, entry] of this.cgroups) if (entry.used < this.generation) this.cgroups.delete(key);
    this.limits.prune();
    this.cgroupFiles.prune();
  }
}

function depth(path: string): number {
  let n = 0;
  for (const char of path) if (char === '/') n++;
  return n;
}

/**
 * evaluatePod, but a level that would go up on the strength of cached limits is first checked against
 * limits read afresh (a process may have raised its own with setrlimit, or been given more with
 * prlimit, since they were cached): the limits of every process at or above the warning threshold of
 * its fds, and of processes with a finite RLIMIT_NPROC when that limit binds, are re-read, and the fd
 * and thread figures evaluated again. `previous` are the levels last reported.
 */
export function evaluatePodWithFreshLimits(
  scanner: Scanner,
  pod: PodFigures,
  node: NodeFigures,
  time: number,
  thresholds: ResolvedThresholds,
  previous: { fileDescriptors?: PressureLevel; threads?: PressureLevel },
  history?: PodHistory,
): PodPressure {
  const first = evaluatePod(pod, node, time, thresholds, history);
  const fdsRise = first.fileDescriptors !== undefined && raisesLevel(previous.fileDescriptors, first.fileDescriptors.level);
  const nprocRise =
    first.threads !== undefined && first.threads.bindingLimit === 'RLIMIT_NPROC' && raisesLevel(previous.threads, first.threads.level);
  if (!fdsRise && !nprocRise) return first;
  const warningShare = thresholds.fileDescriptors.warningPercent / 100;
  let changed = false;
  for (const process of pod.processes) {
    const suspect =
      (fdsRise && process.fds >= process.nofile.soft * warningShare) || (nprocRise && Number.isFinite(process.nproc.soft));
    if (!suspect) continue;
    const fresh = scanner.refreshLimits(process.pid, process.starttime);
    if (!fresh) continue;
    if (fresh.nofile.soft !== process.nofile.soft || fresh.nproc.soft !== process.nproc.soft) changed = true;
    process.nofile = fresh.nofile;
    process.nproc = fresh.nproc;
  }
  if (!changed) return first;
  // Same time: the trend windows ignore the repeated samples; CPU figures are kept from the first pass.
  const fileDescriptors = fileDescriptorPressure(pod, time, thresholds.fileDescriptors, history);
  const threads = threadPressure(pod, node, time, thresholds.threads, history);
  const result: PodPressure = { cpu: first.cpu, level: worstLevel([fileDescriptors?.level, threads?.level]) };
  if (fileDescriptors) result.fileDescriptors = fileDescriptors;
  if (threads) result.threads = threads;
  return result;
}
