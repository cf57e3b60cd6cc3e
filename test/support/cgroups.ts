// Plays the kubelet's cgroup side on this machine, for tests and the demo: creates a pod's and its
// containers' cgroups with the names the kubelet and the runtime would use, sets pids.max and the CFS
// quota as the kubelet would, moves real processes in, and cleans up: kills every process still in
// those cgroups and removes the directories leaf first — on cleanup(), and at process exit for anything
// a failed test left behind.
//   hierarchy 'v1' (default): the real v1 pids, cpu and cpuacct hierarchies (mounted apart here), e.g.
//     /sys/fs/cgroup/pids/kubepods/burstable/pod<uid>/<containerid> with the cgroupfs driver;
//   hierarchy 'unified': this machine's cgroup2 mount (/sys/fs/cgroup/unified, no controllers enabled:
//     membership only, no pids.max or quota), e.g. with the systemd driver and CRI-O + crun,
//     kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/crio-<id>.scope/container.
// Touches only those hierarchies (the memory hierarchy belongs to this machine's own supervisor), and
// only directories it created, apart from the shared kubepods/<qos> parents, which it removes when empty.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** The v1 hierarchies these cgroups are made in; cpu before cpuacct so the quota is set where it lives. */
export const KUBELET_CONTROLLERS = ['pids', 'cpu', 'cpuacct'] as const;
export type KubeletController = (typeof KUBELET_CONTROLLERS)[number];

export interface ContainerCgroupSpec {
  /** 64 hex characters, as containerd names containers; randomContainerID() makes one. */
  id: string;
  pidsMax?: number;
  /** limits.cpu in millicores → cfs_quota_us = millicores × period / 1000 (kubelet MilliCPUToQuota). */
  cpuLimitMillicores?: number;
}

export interface PodCgroupSpec {
  uid?: string;
  qos?: QosClass;
  /** The kubelet's podPidsLimit, written to the pod cgroup's pids.max. */
  podPidsMax?: number;
  containers: ContainerCgroupSpec[];
  /** Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Default 'v1'. */
  hierarchy?: 'v1' | 'unified';
  /** Default 'cgroupfs'. */
  driver?: 'cgroupfs' | 'systemd';
  /** Default 'containerd'. With 'crio' on the unified hierarchy, processes go in crun's `container`. */
  runtime?: 'containerd' | 'crio';
}

const CFS_PERIOD_MICROS = 100_000;

export function randomContainerID(): string {
  return randomBytes(32).toString('hex');
}

export function isCgroupV1Available(cgroupRoot = '/sys/fs/cgroup'): boolean {
  return KUBELET_CONTROLLERS.every((c) => fs.existsSync(`${cgroupRoot}/${c}/cgroup.procs`)) && process.getuid?.() === 0;
}

export function isUnifiedAvailable(cgroupRoot = '/sys/fs/cgroup'): boolean {
  return fs.existsSync(`${cgroupRoot}/unified/cgroup.controllers`) && process.getuid?.() === 0;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

const QOS_PART: Readonly<Record<QosClass, string | undefined>> = {
  Guaranteed: undefined,
  Burstable: 'burstable',
  BestEffort: 'besteffort',
};

const live = new Set<KubeletPodCgroups>();
process.on('exit', () => {
  for (const pod of live) pod.cleanup();
});

export class KubeletPodCgroups {
  readonly uid: string;
  readonly qos: QosClass;
  readonly cgroupRoot: string;
  readonly hierarchy: 'v1' | 'unified';
  readonly driver: 'cgroupfs' | 'systemd';
  readonly runtime: 'containerd' | 'crio';
  /** Relative to each hierarchy root, e.g. kubepods/burstable/pod<uid>. */
  readonly podPath: string;
  readonly containers: readonly ContainerCgroupSpec[];
  /** Absolute roots of the hierarchies used. */
  private readonly roots: string[];
  private readonly created: string[] = [];
  private cleaned = false;

  constructor(spec: PodCgroupSpec) {
    this.uid = spec.uid ?? randomUUID();
    this.qos = spec.qos ?? 'Burstable';
    this.cgroupRoot = spec.cgroupRoot ?? '/sys/fs/cgroup';
    this.hierarchy = spec.hierarchy ?? 'v1';
    this.driver = spec.driver ?? 'cgroupfs';
    this.runtime = spec.runtime ?? 'containerd';
    this.containers = spec.containers;
    this.roots =
      this.hierarchy === 'v1' ? KUBELET_CONTROLLERS.map((c) => `${this.cgroupRoot}/${c}`) : [`${this.cgroupRoot}/unified`];
    const qosPart = QOS_PART[this.qos];
    const parts = ['kubepods', ...(qosPart ? [qosPart] : []), `pod${this.uid}`];
    // systemd: each slice is named after its ancestors joined with '-', and '-' in a part becomes '_'.
    const escaped = parts.map((part) => part.replaceAll('-', '_'));
    this.podPath =
      this.driver === 'cgroupfs' ? parts.join('/') : escaped.map((_, i) => `${escaped.slice(0, i + 1).join('-')}.slice`).join('/');
    if (this.hierarchy === 'unified' && (spec.podPidsMax !== undefined || spec.containers.some((c) => c.pidsMax ?? c.cpuLimitMillicores))) {
      throw new Error('the unified hierarchy on this machine has no pids or cpu controller');
    }
    live.add(this);
    try {
      for (const root of this.roots) {
        this.makeDir(root, this.podPath);
        for (const container of spec.containers) {
          this.makeDir(root, this.containerPath(container.id));
          if (this.payloadPath(container.id) !== this.containerPath(container.id)) this.makeDir(root, this.payloadPath(container.id));
        }
      }
      if (spec.podPidsMax !== undefined) this.write('pids', this.podPath, 'pids.max', String(spec.podPidsMax));
      // The pod gets a quota only when every container has one (kubelet), and before its containers:
      // v1 refuses a child quota above its parent's.
      const limits = spec.containers.map((c) => c.cpuLimitMillicores);
      if (limits.length > 0 && limits.every((m) => m !== undefined)) {
        const total = limits.reduce((a, b) => a + b, 0);
        this.setQuota(this.podPath, total);
      }
      for (const container of spec.containers) {
        if (container.pidsMax !== undefined) this.write('pids', this.containerPath(container.id), 'pids.max', String(container.pidsMax));
        if (container.cpuLimitMillicores !== undefined) this.setQuota(this.containerPath(container.id), container.cpuLimitMillicores);
      }
    } catch (error) {
      this.cleanup();
      throw error;
    }
  }

  /** The container's cgroup, relative to each hierarchy root. */
  containerPath(containerID: string): string {
    const leaf =
      this.driver === 'systemd'
        ? `${this.runtime === 'crio' ? 'crio' : 'cri-containerd'}-${containerID}.scope`
        : this.runtime === 'crio'
          ? `crio-${containerID}`
          : containerID;
    return `${this.podPath}/${leaf}`;
  }

  /** Where the container's processes are: crun on cgroup v2 nests them in `container`. */
  payloadPath(containerID: string): string {
    const nested = this.hierarchy === 'unified' && this.runtime === 'crio';
    return nested ? `${this.containerPath(containerID)}/container` : this.containerPath(containerID);
  }

  /** The pod's (or a container's) directory in a v1 controller's hierarchy, or in the unified one. */
  dir(controller: KubeletController, containerID?: string): string {
    const relative = containerID === undefined ? this.podPath : this.containerPath(containerID);
    return this.hierarchy === 'v1' ? `${this.cgroupRoot}/${controller}/${relative}` : `${this.cgroupRoot}/unified/${relative}`;
  }

  /** Moves a running process (all its threads) into the container's cgroups. */
  addProcess(containerID: string, pid: number): void {
    for (const root of this.roots) fs.writeFileSync(`${root}/${this.payloadPath(containerID)}/cgroup.procs`, String(pid));
  }

  /**
   * Starts `command` already inside the container's cgroups: a shell writes its own pid into them and
   * execs the command, so not even its first thread runs outside.
   */
  spawnInContainer(containerID: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    const files = this.roots.map((root) => `${root}/${this.payloadPath(containerID)}/cgroup.procs`);
    const script = `${files.map((f) => `echo $$ > '${f}' || exit 97`).join('; ')}; exec "$@"`;
    return spawn('/bin/sh', ['-c', script, 'sh', command, ...args], { stdio: 'ignore', ...options });
  }

  /** PIDs directly in the pod's (or a container's payload) cgroup, from the first hierarchy. */
  pids(_controller: KubeletController = 'pids', containerID?: string): number[] {
    const relative = containerID === undefined ? this.podPath : this.payloadPath(containerID);
    try {
      return fs
        .readFileSync(`${this.roots[0]}/${relative}/cgroup.procs`, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map(Number);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
  }

  /** Kills every process in these cgroups and removes them, leaf first. Safe to call twice. */
  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    live.delete(this);
    const deadline = Date.now() + 10_000;
    for (const dir of [...this.created].reverse()) {
      for (;;) {
        let pids: number[] = [];
        try {
          pids = fs.readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
        } catch (error) {
          if (errorCode(error) === 'ENOENT') break;
          throw error;
        }
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        try {
          fs.rmdirSync(dir);
          break;
        } catch (error) {
          const code = errorCode(error);
          if (code === 'ENOENT') break;
          // EBUSY until the killed tasks have exited (and zombies are reaped by their parents).
          if (code !== 'EBUSY' || Date.now() > deadline) throw error;
          sleepSync(10);
        }
      }
    }
    // Shared parents (kubepods, kubepods/<qos>): removed when no other pod uses them.
    for (const root of this.roots) {
      const parts = this.podPath.split('/').slice(0, -1);
      while (parts.length > 0) {
        try {
          fs.rmdirSync(`${root}/${parts.join('/')}`);
        } catch {
          break; // in use by another pod, or already gone
        }
        parts.pop();
      }
    }
  }

  private makeDir(root: string, relativePath: string): void {
    const parts = relativePath.split('/');
    // mkdir level by level: a concurrent cleanup may remove an empty shared parent between our calls.
    for (let attempt = 0; ; attempt++) {
      try {
        for (let i = 1; i <= parts.length; i++) {
          try {
            fs.mkdirSync(`${root}/${parts.slice(0, i).join('/')}`);
          } catch (error) {
            if (errorCode(error) !== 'EEXIST') throw error;
          }
        }
        break;
      } catch (error) {
        if (errorCode(error) !== 'ENOENT' || attempt > 20) throw error;
      }
    }
    this.created.push(`${root}/${relativePath}`);
  }

  private setQuota(relativePath: string, millicores: number): void {
    this.write('cpu', relativePath, 'cpu.cfs_period_us', String(CFS_PERIOD_MICROS));
    this.write('cpu', relativePath, 'cpu.cfs_quota_us', String(Math.max(1000, (millicores * CFS_PERIOD_MICROS) / 1000)));
  }

  private write(controller: KubeletController, relativePath: string, file: string, value: string): void {
    fs.writeFileSync(`${this.cgroupRoot}/${controller}/${relativePath}/${file}`, value);
  }
}

export function createKubeletPodCgroups(spec: PodCgroupSpec): KubeletPodCgroups {
  return new KubeletPodCgroups(spec);
}
