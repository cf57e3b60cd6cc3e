// Plays the kubelet for one pod, for tests and the demo: the Pod object is created through the API
// server with spec.nodeName already set (no scheduler), its UID and QoS class are read back, the
// kubelet-layout cgroups are made under that UID and QoS (cgroups.ts), real processes are started in
// a container's cgroups, and the container IDs, phase and restart state are patched into pod status as
// the kubelet would report them. cleanup() kills the processes, removes the cgroups and force-deletes
// the Pod (no kubelet will confirm its termination); anything a failed test left is cleaned at exit.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import type { Cluster } from './cluster.ts';
import { createKubeletPodCgroups, randomContainerID, type KubeletPodCgroups, type QosClass } from './cgroups.ts';

export interface KubeletContainerSpec {
  name: string;
  /** Literal env entries of the container spec (what the pod spec says, not what the process gets). */
  env?: { name: string; value: string }[];
  /** limits.cpu, e.g. `500m`: in the spec, and as the container cgroup's CFS quota. */
  cpuLimitMillicores?: number;
  /** The container cgroup's pids.max (the kubelet leaves it unlimited; tests may not). */
  pidsMax?: number;
}

export interface KubeletPodSpec {
  namespace: string;
  name: string;
  nodeName: string;
  labels?: Record<string, string>;
  hostNetwork?: boolean;
  /** The kubelet's podPidsLimit: the pod cgroup's pids.max. */
  podPidsMax?: number;
  containers: KubeletContainerSpec[];
}

interface PodJson {
  metadata: { uid: string; resourceVersion: string };
  status?: { qosClass?: QosClass };
}

interface ContainerState {
  id: string;
  restartCount: number;
  lastState?: { terminated: { exitCode: number; reason: string; startedAt: string; finishedAt: string; containerID: string } };
}

const live = new Set<KubeletPod>();
process.on('exit', () => {
  for (const pod of live) pod.cleanupProcesses();
});

export class KubeletPod {
  readonly cluster: Cluster;
  readonly spec: KubeletPodSpec;
  readonly uid: string;
  readonly qos: QosClass;
  readonly cgroups: KubeletPodCgroups;
  private readonly containers = new Map<string, ContainerState>();
  private readonly children = new Set<ChildProcess>();
  private deleted = false;

  private constructor(cluster: Cluster, spec: KubeletPodSpec, uid: string, qos: QosClass) {
    this.cluster = cluster;
    this.spec = spec;
    this.uid = uid;
    this.qos = qos;
    for (const container of spec.containers) this.containers.set(container.name, { id: randomContainerID(), restartCount: 0 });
    this.cgroups = createKubeletPodCgroups({
      uid,
      qos,
      ...(spec.podPidsMax !== undefined ? { podPidsMax: spec.podPidsMax } : {}),
      containers: spec.containers.map((c) => ({
        id: this.containerID(c.name),
        ...(c.pidsMax !== undefined ? { pidsMax: c.pidsMax } : {}),
        ...(c.cpuLimitMillicores !== undefined ? { cpuLimitMillicores: c.cpuLimitMillicores } : {}),
      })),
    });
    live.add(this);
  }

  /** Creates the Pod, reads back its UID and QoS class, and makes its cgroups. Not yet Running. */
  static async create(cluster: Cluster, spec: KubeletPodSpec): Promise<KubeletPod> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: spec.name, namespace: spec.namespace, ...(spec.labels ? { labels: spec.labels } : {}) },
      spec: {
        nodeName: spec.nodeName,
        ...(spec.hostNetwork ? { hostNetwork: true } : {}),
        automountServiceAccountToken: false,
        containers: spec.containers.map((c) => ({
          name: c.name,
          image: 'registry.example/app:1',
          ...(c.env ? { env: c.env } : {}),
          ...(c.cpuLimitMillicores !== undefined ? { resources: { limits: { cpu: `${c.cpuLimitMillicores}m` } } } : {}),
        })),
      },
    };
    await cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(pod) });
    const created = await cluster.getJson<PodJson>(['pod', '-n', spec.namespace, spec.name]);
    return new KubeletPod(cluster, spec, created.metadata.uid, created.status?.qosClass ?? 'BestEffort');
  }

  containerID(name: string): string {
    const state = this.containers.get(name);
    if (!state) throw new Error(`no container ${name}`);
    return state.id;
  }

  /** Starts a process inside the container's cgroups (killed on cleanup). */
  spawn(container: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    const child = this.cgroups.spawnInContainer(this.containerID(container), command, args, options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Moves an already running process into the container's cgroups. */
  adopt(container: string, pid: number): void {
    this.cgroups.addProcess(this.containerID(container), pid);
  }

  /** Patches status as the kubelet reports a running pod: phase, container IDs, restart state. */
  async markRunning(): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const containerStatuses = this.spec.containers.map((c) => {
      const state = this.containers.get(c.name) as ContainerState;
      return {
        name: c.name,
        image: 'registry.example/app:1',
        imageID: 'registry.example/app@sha256:' + '0'.repeat(64),
        containerID: `containerd://${state.id}`,
        ready: true,
        started: true,
        restartCount: state.restartCount,
        state: { running: { startedAt: now } },
        ...(state.lastState ? { lastState: state.lastState } : {}),
      };
    });
    const patch = { status: { phase: 'Running', qosClass: this.qos, containerStatuses } };
    await this.cluster.kubectl(
      ['patch', 'pod', '-n', this.spec.namespace, this.spec.name, '--subresource=status', '--type=merge', '-p', JSON.stringify(patch)],
    );
  }

  /**
   * Records that the container's previous instance ended (exit code, reason) and a new one runs: the
   * restart count rises, lastState.terminated says why. The cgroup stays the same (a real runtime would
   * make a new one under a new container ID; the agent keys crash memory by container name either way).
   */
  async recordRestart(container: string, exitCode: number, reason = 'Error'): Promise<void> {
    const state = this.containers.get(container);
    if (!state) throw new Error(`no container ${container}`);
    const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    state.lastState = { terminated: { exitCode, reason, startedAt: at, finishedAt: at, containerID: `containerd://${state.id}` } };
    state.restartCount++;
    await this.markRunning();
  }

  restartCount(container: string): number {
    return this.containers.get(container)?.restartCount ?? 0;
  }

  /** Kills the processes started here and removes the cgroups (synchronous: safe at exit). */
  cleanupProcesses(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.cgroups.cleanup();
    live.delete(this);
  }

  /** Kills processes, removes cgroups and force-deletes the Pod. Safe to call twice. */
  async cleanup(): Promise<void> {
    this.cleanupProcesses();
    if (this.deleted) return;
    this.deleted = true;
    await this.cluster.kubectl(
      ['delete', 'pod', '-n', this.spec.namespace, this.spec.name, '--grace-period=0', '--force', '--ignore-not-found', '--wait=false'],
      { allowFailure: true },
    );
  }
}
