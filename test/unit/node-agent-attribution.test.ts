// Attribution on SYNTHETIC fixture trees (test/fixtures/cgroups): every cgroup driver, runtime and
// version, decoy pods whose UID shares a prefix, and pids reused mid-scan. Expected values by hand.
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PRESSURE } from '../../src/api/v1alpha1.ts';
import {
  cgroupPodUID,
  detectCgroupLayout,
  evaluatePod,
  PodHistory,
  resolveContainerCgroup,
  Scanner,
  type PodTarget,
} from '../../src/node-agent/index.ts';
import {
  APP_ID,
  CGROUPFS_CRIO_ID,
  CGROUPFS_ID,
  cgroupfsV1CombinedContainerd,
  cgroupfsV1SplitCrio,
  CRIO_ID,
  DECOY_ID,
  DECOY_POD_UID,
  DOCKER_ID,
  KIND_ID,
  kindSystemdV2,
  PAUSE_ID,
  POD_UID,
  STATIC_MIRROR_UID,
  STATIC_POD_HASH,
  systemdV1SplitDocker,
  systemdV2Containerd,
  systemdV2Crio,
} from '../fixtures/cgroups/scenarios.ts';
import { buildSyntheticNode, type BuiltNode, type SyntheticNode } from '../fixtures/cgroups/synthetic-node.ts';

const built: BuiltNode[] = [];
afterEach(() => {
  for (const node of built.splice(0)) node.cleanup();
});

function build(node: SyntheticNode): BuiltNode {
  const tree = buildSyntheticNode(node);
  built.push(tree);
  return tree;
}

function scannerFor(tree: BuiltNode, options: ConstructorParameters<typeof Scanner>[0] = {}): Scanner {
  return new Scanner({ procRoot: tree.procRoot, cgroupRoot: tree.cgroupRoot, ...options });
}

const app: PodTarget = { uid: POD_UID, containers: [{ name: 'app', containerID: `containerd://${APP_ID}` }] };
const decoy: PodTarget = { uid: DECOY_POD_UID, containers: [{ name: 'decoy', containerID: `containerd://${DECOY_ID}` }] };

describe('cgroup layouts (synthetic)', () => {
  it('finds v2, v1 with split cpu/cpuacct, and v1 with a joint cpu,cpuacct mount', () => {
    const v2 = build(systemdV2Containerd);
    const split = build(systemdV1SplitDocker);
    const joint = build(cgroupfsV1CombinedContainerd);
    expect(detectCgroupLayout(v2.cgroupRoot)).toEqual({
      version: 'v2',
      procsRoot: v2.cgroupRoot,
      pidsRoot: v2.cgroupRoot,
      cpuRoot: v2.cgroupRoot,
    });
    expect(detectCgroupLayout(split.cgroupRoot)).toEqual({
      version: 'v1',
      procsRoot: `${split.cgroupRoot}/pids`,
      pidsRoot: `${split.cgroupRoot}/pids`,
      cpuRoot: `${split.cgroupRoot}/cpu`,
    });
    expect(detectCgroupLayout(joint.cgroupRoot).cpuRoot).toBe(`${joint.cgroupRoot}/cpu,cpuacct`);
  });

  it('the fixture /proc has no fd count in st_size, so the scanner lists fds there', () => {
    expect(scannerFor(build(systemdV2Containerd)).fdCountMethod).toBe('readdir');
  });
});

describe('attribution (synthetic)', () => {
  it('systemd + containerd + v2: the real pod gets its process only, not the decoy’s nor a pid reused mid-scan', () => {
    const tree = build(systemdV2Containerd);
    const cgroup = resolveContainerCgroup(detectCgroupLayout(tree.cgroupRoot), POD_UID, `containerd://${APP_ID}`);
    expect(cgroup?.relativePath).toBe(
      'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3f5c2e_1b7d_4e9a_9c61_2f0d7b4e5a13.slice/cri-containerd-df574a3e5601e586f03c27b85aacb24199f164aa85e0bb5dbe01437c039f2343.scope',
    );
    expect(cgroup).toMatchObject({ driver: 'systemd', qos: 'Burstable' });

    const scanner = scannerFor(tree);
    const scan = scanner.tick([app, decoy], 1000);
    const [mine, theirs] = scan.pods;
    expect(mine?.processes.map((p) => [p.pid, p.comm, p.fds, p.threads])).toEqual([[4101, 'app', 40, 12]]);
    expect(theirs?.processes.map((p) => [p.pid, p.comm, p.fds])).toEqual([
      [4102, 'decoy', 45],
      [4201, 'decoy', 49],
    ]);
    expect(scanner.counters).toEqual({ confirmed: 3, rejected: 1, vanished: 0, outOfFds: 0 });
    expect(mine?.pidsChain).toEqual([
      { scope: 'container', max: Infinity, current: 12 },
      { scope: 'pod', max: 64, current: 13 },
      { scope: 'ancestor', max: Infinity, current: 40 },
      { scope: 'ancestor', max: Infinity, current: 40 },
    ]);
    expect(mine?.containers).toEqual([
      {
        name: 'app',
        found: true,
        processes: 1,
        cpuQuota: { quotaCores: 1.5, quotaMicros: 150000, periodMicros: 100000 },
        cpuThrottling: { periods: 200, throttledPeriods: 50, throttledMicros: 1234567 },
      },
    ]);
    const pressure = evaluatePod(mine!, scan.node, scan.time, DEFAULT_PRESSURE);
    // 40 of 50: Warning. Had the decoy's 4102 (45/50) or 4201 (49/50) been taken, it would say more.
    expect(pressure.fileDescriptors).toEqual({
      level: 'Warning',
      open: 40,
      limit: 50,
      percent: 80,
      process: { pid: 4101, comm: 'app', container: 'app', count: 40, limit: 50 },
    });
    expect(pressure.threads).toEqual({ level: 'OK', threads: 12, limit: 64, percent: 20.3, bindingLimit: 'pids.max' });
  });

  it('a pid confirmed on one tick and reused by another pod’s process before the next is dropped', () => {
    const tree = build(systemdV2Containerd);
    const scanner = scannerFor(tree);
    expect(scanner.tick([app], 1000).pods[0]?.processes.map((p) => p.pid)).toEqual([4101]);
    // 4101 exits; its pid goes to a process of the decoy pod; app's cgroup.procs was read before.
    tree.writeProcess({
      pid: 4101,
      starttime: 9500,
      comm: 'decoy',
      threads: 1,
      fds: 49,
      nofile: [50, 50],
      nproc: ['unlimited', 'unlimited'],
      realUid: 0,
      cgroup: [
        '0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3f5c2e_1b7d_4e9a_9c61_2f0d7b4e5a1f.slice/cri-containerd-df574a3e5601e586f03c27b85aacb24199f164aa85e0bb5dbe01437c039f2399.scope',
      ],
    });
    const second = scanner.tick([app], 11_000);
    expect(second.pods[0]?.processes).toEqual([]);
    // 4102 on both ticks (app's stale cgroup.procs still lists it) and 4101 now.
    expect(scanner.counters.rejected).toBe(3);
    expect(scanner.limits.size).toBe(0);
  });

  it('a process that vanishes between listing and reading is skipped', () => {
    const tree = build(systemdV2Containerd);
    tree.removeProcess(4101);
    const scanner = scannerFor(tree);
    expect(scanner.tick([app]).pods[0]?.processes).toEqual([]);
    expect(scanner.counters).toEqual({ confirmed: 0, rejected: 1, vanished: 1, outOfFds: 0 });
  });

  it('systemd + CRI-O + crun on v2: payload in `container` below the scope, conmon left out', () => {
    const tree = build(systemdV2Crio);
    const pod: PodTarget = { uid: POD_UID, containers: [{ name: 'web', containerID: `cri-o://${CRIO_ID}` }] };
    const scan = scannerFor(tree).tick([pod]);
    const figures = scan.pods[0]!;
    expect(figures.processes.map((p) => [p.pid, p.comm, p.fds, p.threads])).toEqual([
      [5101, 'nginx', 12, 1],
      [5102, 'nginx', 300, 7],
    ]);
    expect(figures.containers[0]).toMatchObject({ found: true, processes: 2, cpuQuota: { quotaCores: undefined } });
    expect(evaluatePod(figures, scan.node, scan.time, DEFAULT_PRESSURE).fileDescriptors).toMatchObject({
      level: 'OK',
      percent: 29.3,
      process: { pid: 5102, count: 300, limit: 1024 },
    });
  });

  it('systemd + cri-dockerd on v1 with cpu and cpuacct apart, Guaranteed (no QoS level)', () => {
    const tree = build(systemdV1SplitDocker);
    const pod: PodTarget = { uid: POD_UID, containers: [{ name: 'jvm', containerID: `docker://${DOCKER_ID}` }] };
    const scanner = scannerFor(tree);
    const figures = scanner.tick([pod]).pods[0]!;
    expect(figures.processes.map((p) => [p.pid, p.comm, p.threads])).toEqual([[6101, 'java', 7]]);
    expect(figures.containers[0]).toEqual({
      name: 'jvm',
      found: true,
      processes: 1,
      cpuQuota: { quotaCores: 2, quotaMicros: 200000, periodMicros: 100000 },
      cpuThrottling: { periods: 1000, throttledPeriods: 10, throttledMicros: 5_000_000 },
    });
    expect(figures.pidsChain.map((l) => [l.scope, l.max])).toEqual([
      ['container', Infinity],
      ['pod', 100],
      ['ancestor', Infinity],
    ]);
  });

  it('cgroupfs + containerd on v1 with cpu,cpuacct: comm with ")", and RLIMIT_NPROC shared with a process outside the pod binds', () => {
    const tree = build(cgroupfsV1CombinedContainerd);
    const pod: PodTarget = {
      uid: POD_UID,
      containers: [{ name: 'app', containerID: `containerd://${CGROUPFS_ID}` }],
    };
    const scan = scannerFor(tree).tick([pod, decoy], 5000);
    const figures = scan.pods[0]!;
    expect(figures.processes.map((p) => [p.pid, p.comm, p.threads, p.realUid])).toEqual([
      [7101, 'odd) S 1 (x', 40, 1000],
      [7102, 'worker', 5, 1000],
    ]);
    expect(scan.pods[1]?.processes.map((p) => p.pid)).toEqual([7201]);
    expect(scan.node).toEqual({
      kernel: { threadsMax: 192730, pidMax: 32768, tasks: 412 },
      tasksByUid: new Map([[1000, 55]]), // 40 + 5 in the pod, 10 in sshd outside it
    });
    // pids.max: 45 of 50 (headroom 5); RLIMIT_NPROC: 55 of 58 (headroom 3) binds.
    expect(evaluatePod(figures, scan.node, scan.time, DEFAULT_PRESSURE).threads).toEqual({
      level: 'Warning',
      threads: 45,
      limit: 58,
      percent: 94.8,
      bindingLimit: 'RLIMIT_NPROC',
    });
    expect(figures.containers[0]?.cpuQuota?.quotaCores).toBe(0.5);
  });

  it('skips the node-wide walk for RLIMIT_NPROC while the node has too few tasks to come near it', () => {
    const tree = build(cgroupfsV1CombinedContainerd);
    const pod: PodTarget = { uid: POD_UID, containers: [{ name: 'app', containerID: `containerd://${CGROUPFS_ID}` }] };
    // 412 tasks on the node; the walk would start at 10 × the limit of 58 = 580.
    const scan = scannerFor(tree, { nprocTallyFromPercent: 1000 }).tick([pod]);
    expect(scan.node.tasksByUid).toEqual(new Map([[1000, 45]])); // the pod's own, not sshd's 10
  });

  it('cgroupfs + CRI-O on v1 split, BestEffort', () => {
    const tree = build(cgroupfsV1SplitCrio);
    const pod: PodTarget = { uid: POD_UID, containers: [{ name: 'cache', containerID: `cri-o://${CGROUPFS_CRIO_ID}` }] };
    const figures = scannerFor(tree).tick([pod]).pods[0]!;
    expect(figures.processes.map((p) => [p.pid, p.comm, p.fds])).toEqual([[8101, 'redis-server', 17]]);
    expect(figures.containers[0]?.cpuQuota).toEqual({ quotaCores: undefined, quotaMicros: undefined, periodMicros: 100000 });
  });

  it('kind’s --cgroup-root and a static pod named after its config hash', () => {
    const tree = build(kindSystemdV2);
    const scanner = scannerFor(tree, { resolve: { cgroupRoots: [['kubelet']] } });
    const coredns: PodTarget = { uid: POD_UID, containers: [{ name: 'coredns', containerID: `containerd://${KIND_ID}` }] };
    const mirror = { uid: STATIC_MIRROR_UID, annotations: { 'kubernetes.io/config.mirror': STATIC_POD_HASH } };
    expect(cgroupPodUID(mirror)).toBe('87022a46636882217bcb5342c1712c10');
    const etcd: PodTarget = {
      uid: cgroupPodUID(mirror),
      containers: [{ name: 'etcd', containerID: `containerd://${CGROUPFS_ID}` }],
    };
    const byMirrorUID: PodTarget = { ...etcd, uid: STATIC_MIRROR_UID };
    const scan = scanner.tick([coredns, etcd, byMirrorUID]);
    expect(scan.pods.map((p) => p.processes.map((q) => q.comm))).toEqual([['coredns'], ['etcd'], []]);
    expect(scan.pods[1]?.containers[0]?.cpuQuota?.quotaCores).toBe(0.25);
    // Without the kubelet's cgroup root the kind layout is not found.
    expect(scannerFor(tree).tick([coredns]).pods[0]?.containers[0]?.found).toBe(false);
  });

  it('the pause container and a container of another pod are not found under this pod', () => {
    const tree = build(systemdV2Containerd);
    const layout = detectCgroupLayout(tree.cgroupRoot);
    expect(resolveContainerCgroup(layout, POD_UID, PAUSE_ID)?.leafName).toBe(
      'cri-containerd-cee5b0587966ee8f8e20286b001bc95e47925034bdc820558ba1ae924ffac011.scope',
    );
    expect(resolveContainerCgroup(layout, POD_UID, DECOY_ID)).toBeUndefined();
    expect(resolveContainerCgroup(layout, DECOY_POD_UID, APP_ID)).toBeUndefined();
    expect(resolveContainerCgroup(layout, '8a3f5c2e-1b7d-4e9a-9c61-2f0d7b4e5a1', APP_ID)).toBeUndefined();
  });

  it('growth per minute and seconds to exhaustion from ticks of the same process', () => {
    const tree = build(systemdV2Containerd);
    const scanner = scannerFor(tree);
    const history = new PodHistory();
    const base = {
      pid: 4101,
      starttime: 5000,
      comm: 'app',
      threads: 12,
      nofile: [50, 524288] as [number, number],
      nproc: ['unlimited', 'unlimited'] as ['unlimited', 'unlimited'],
      realUid: 65532,
      cgroup: [
        '0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a3f5c2e_1b7d_4e9a_9c61_2f0d7b4e5a13.slice/cri-containerd-df574a3e5601e586f03c27b85aacb24199f164aa85e0bb5dbe01437c039f2343.scope',
      ],
    };
    let last;
    // 10 s ticks, +2 fds each: 12 per minute; from 20 to 32 over 60 s (the shortest window trusted).
    for (let i = 0; i <= 6; i++) {
      tree.writeProcess({ ...base, fds: 20 + 2 * i });
      const scan = scanner.tick([app], 1_000_000 + i * 10_000);
      last = evaluatePod(scan.pods[0]!, scan.node, scan.time, DEFAULT_PRESSURE, history);
    }
    expect(last?.fileDescriptors).toMatchObject({ open: 32, limit: 50, growthPerMinute: 12, secondsToExhaustion: 90 });
  });
});
