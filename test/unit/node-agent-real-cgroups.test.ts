// The scan against real processes, fds and cgroups on this machine (cgroup v1, cgroupfs names as the
// kubelet makes them). Needs root; with REQUIRE_E2E=1 a missing privilege fails instead of skipping.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PRESSURE } from '../../src/api/v1alpha1.ts';
import {
  evaluatePod,
  evaluatePodWithFreshLimits,
  PodHistory,
  Scanner,
  type PodFigures,
  type PodTarget,
} from '../../src/node-agent/index.ts';
import {
  createKubeletPodCgroups,
  isCgroupV1Available,
  isUnifiedAvailable,
  randomContainerID,
  type KubeletPodCgroups,
} from '../support/cgroups.ts';
import { Holder } from '../support/holder-processes.ts';
import { requirement } from '../support/require.ts';

const available = requirement(isCgroupV1Available(), 'root and cgroup v1 (pids, cpu, cpuacct)');
const unifiedAvailable = requirement(isUnifiedAvailable(), 'root and a cgroup2 mount at /sys/fs/cgroup/unified');

const pods: KubeletPodCgroups[] = [];
afterEach(() => {
  for (const pod of pods.splice(0)) pod.cleanup();
});


function makePod(spec: Parameters<typeof createKubeletPodCgroups>[0]): KubeletPodCgroups {
  const pod = createKubeletPodCgroups(spec);
  pods.push(pod);
  return pod;
}

function target(pod: KubeletPodCgroups, names: string[] = ['app']): PodTarget {
  return {
    uid: pod.uid,
    containers: pod.containers.map((c, i) => ({ name: names[i] ?? `c${i}`, containerID: `containerd://${c.id}` })),
  };
}

function only<T>(list: readonly T[]): T {
  expect(list).toHaveLength(1);
  return list[0] as T;
}

function podOf(figures: { pods: PodFigures[] }): PodFigures {
  return only(figures.pods);
}

describe.runIf(available)('node agent scan on real cgroups', () => {
  it('counts a process’s fds by stat of /proc/PID/fd and names the worst process as it nears its limit', async () => {
    const id = randomContainerID();
    const pod = makePod({ containers: [{ id }] });
    const holder = await Holder.start(pod, id, { nofile: 100 });
    const scanner = new Scanner();
    expect(scanner.fdCountMethod).toBe('stat'); // Linux ≥ 6.2: st_size is the fd count
    const readdirScanner = new Scanner({ fdCountMethod: 'readdir' });

    await holder.setFds(70); // 0, 1, 2 + 70
    let figures = podOf(scanner.tick([target(pod)]));
    let process = only(figures.processes);
    expect(process).toMatchObject({ pid: holder.pid, comm: 'python3', container: 'app', fds: 73, threads: 1 });
    expect(process.nofile.soft).toBe(100);
    expect(only(podOf(readdirScanner.tick([target(pod)])).processes).fds).toBe(73);
    expect(evaluatePod(figures, { kernel: undefined, tasksByUid: new Map() }, 0, DEFAULT_PRESSURE).fileDescriptors).toEqual({
      level: 'OK',
      open: 73,
      limit: 100,
      percent: 73,
      process: { pid: holder.pid, comm: 'python3', container: 'app', count: 73, limit: 100 },
    });

    await holder.setFds(79); // 82 of 100
    figures = podOf(scanner.tick([target(pod)]));
    expect(evaluatePod(figures, { kernel: undefined, tasksByUid: new Map() }, 0, DEFAULT_PRESSURE).fileDescriptors?.level).toBe('Warning');

    await holder.setFds(93); // 96 of 100
    figures = podOf(scanner.tick([target(pod)]));
    process = only(figures.processes);
    expect(process.fds).toBe(96);
    expect(evaluatePod(figures, { kernel: undefined, tasksByUid: new Map() }, 0, DEFAULT_PRESSURE).fileDescriptors?.level).toBe('Critical');

    await expect(holder.setFds(98)).rejects.toThrow(/EMFILE|OSError/); // the real limit: 3 + 97 = 100
  });

  it('reads limits once per process identity and re-reads them on demand', async () => {
    const id = randomContainerID();
    const pod = makePod({ containers: [{ id }] });
    const holder = await Holder.start(pod, id, { nofile: 100 });
    const scanner = new Scanner();
    scanner.tick([target(pod)]);
    scanner.tick([target(pod)]);
    expect(scanner.limits.reads).toBe(1);
    execFileSync('prlimit', ['--pid', String(holder.pid), '--nofile=300:']);
    const cached = only(podOf(scanner.tick([target(pod)])).processes);
    expect(cached.nofile.soft).toBe(100); // stale until asked
    expect(scanner.refreshLimits(cached.pid, cached.starttime)?.nofile.soft).toBe(300);
    expect(only(podOf(scanner.tick([target(pod)])).processes).nofile.soft).toBe(300);
    expect(scanner.limits.reads).toBe(2);
  });

  it('re-reads cached limits before raising a level: a process given a higher limit stays OK', async () => {
    const id = randomContainerID();
    const pod = makePod({ containers: [{ id }] });
    const holder = await Holder.start(pod, id, { nofile: 100 });
    const scanner = new Scanner();
    await holder.setFds(47); // 50 of 100
    let scan = scanner.tick([target(pod)]);
    const first = evaluatePodWithFreshLimits(scanner, podOf(scan), scan.node, scan.time, DEFAULT_PRESSURE, {});
    expect(first.fileDescriptors).toMatchObject({ level: 'OK', open: 50, limit: 100 });

    execFileSync('prlimit', ['--pid', String(holder.pid), '--nofile=1000:']);
    await holder.setFds(93); // 96: Critical against the cached 100, 9.6 % of the real 1000
    scan = scanner.tick([target(pod)]);
    expect(evaluatePod(podOf(scan), scan.node, scan.time, DEFAULT_PRESSURE).fileDescriptors?.level).toBe('Critical');
    const confirmed = evaluatePodWithFreshLimits(scanner, podOf(scan), scan.node, scan.time, DEFAULT_PRESSURE, {
      fileDescriptors: 'OK',
    });
    expect(confirmed.fileDescriptors).toEqual({
      level: 'OK',
      open: 96,
      limit: 1000,
      percent: 9.6,
      process: { pid: holder.pid, comm: 'python3', container: 'app', count: 96, limit: 1000 },
    });
    expect(confirmed.level).toBe('OK');
  });

  it('names pids.max of the pod cgroup as the binding thread limit, up to the real EAGAIN', async () => {
    const id = randomContainerID();
    const pod = makePod({ podPidsMax: 20, containers: [{ id }] });
    const holder = await Holder.start(pod, id);
    const scanner = new Scanner();

    await holder.setThreads(15); // 16 tasks of 20
    let scan = scanner.tick([target(pod)]);
    let figures = podOf(scan);
    expect(only(figures.processes).threads).toBe(16);
    expect(figures.pidsChain.map((l) => [l.max, l.current])).toEqual([
      [Infinity, 16], // container
      [20, 16], // pod
      [Infinity, expect.any(Number) as number], // kubepods/burstable (other tests' pods may be here)
      [Infinity, expect.any(Number) as number], // kubepods
    ]);
    expect(evaluatePod(figures, scan.node, scan.time, DEFAULT_PRESSURE).threads).toEqual({
      level: 'Warning',
      threads: 16,
      limit: 20,
      percent: 80,
      bindingLimit: 'pids.max',
    });

    await holder.setThreads(19); // 20 of 20
    scan = scanner.tick([target(pod)]);
    figures = podOf(scan);
    expect(evaluatePod(figures, scan.node, scan.time, DEFAULT_PRESSURE).threads).toMatchObject({
      level: 'Critical',
      threads: 20,
      percent: 100,
      bindingLimit: 'pids.max',
    });
    await expect(holder.setThreads(20)).rejects.toThrow(/RuntimeError/); // can't start new thread
  });

  it('names RLIMIT_NPROC shared by two pods of one non-root UID, counting both pods’ tasks', async () => {
    const uid = 40_000 + Math.floor(Math.random() * 20_000);
    const [idA, idB] = [randomContainerID(), randomContainerID()];
    const podA = makePod({ containers: [{ id: idA }] });
    const podB = makePod({ containers: [{ id: idB }] });
    const a = await Holder.start(podA, idA, { nproc: 30, uid });
    const b = await Holder.start(podB, idB, { nproc: 30, uid });
    await a.setThreads(10); // 11 tasks
    await b.setThreads(12); // 13 tasks: 24 of the UID's 30
    const scanner = new Scanner();
    let scan = scanner.tick([target(podA), target(podB)]);
    expect(scan.node.tasksByUid.get(uid)).toBe(24);
    const [figuresA] = scan.pods as [PodFigures, PodFigures];
    expect(only(figuresA.processes).realUid).toBe(uid);
    expect(evaluatePod(figuresA, scan.node, scan.time, DEFAULT_PRESSURE).threads).toEqual({
      level: 'Warning',
      threads: 11,
      limit: 30,
      percent: 80,
      bindingLimit: 'RLIMIT_NPROC',
    });

    await b.setThreads(17); // 18 + 11 = 29 of 30
    scan = scanner.tick([target(podA), target(podB)]);
    expect(evaluatePod(scan.pods[0] as PodFigures, scan.node, scan.time, DEFAULT_PRESSURE).threads).toMatchObject({
      level: 'Critical',
      threads: 11,
      percent: 96.7,
      bindingLimit: 'RLIMIT_NPROC',
    });
    await a.setThreads(11); // the 30th task
    await expect(b.setThreads(18)).rejects.toThrow(/RuntimeError/); // EAGAIN from copy_process
  });

  it('reads the container leaf’s CPU quota and the share of periods throttled between ticks', async () => {
    const id = randomContainerID();
    // 10m is the kubelet's smallest quota (1000 µs per 100 ms): a busy loop exhausts it in every period
    // it gets scheduled in, however loaded the machine.
    const pod = makePod({ containers: [{ id, cpuLimitMillicores: 10 }] });
    const busy = pod.spawnInContainer(id, '/bin/sh', ['-c', 'while :; do :; done']);
    const scanner = new Scanner();
    const history = new PodHistory();
    let scan = scanner.tick([target(pod)]);
    expect(evaluatePod(podOf(scan), scan.node, scan.time, DEFAULT_PRESSURE, history).cpu).toEqual([
      { container: 'app', quotaCores: 0.01 },
    ]);
    // Tick until some periods have passed: on a machine at load average 10 the busy loop may not run
    // for a while, so how long that takes, and how large the share is, are not asserted — only that a
    // loop that always exhausts its 1 ms is throttled in some of the periods it ran in.
    let throttled: number | undefined;
    for (let waited = 0; waited < 20_000 && !(throttled !== undefined && throttled > 0); waited += 500) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      scan = scanner.tick([target(pod)]);
      throttled = evaluatePod(podOf(scan), scan.node, scan.time, DEFAULT_PRESSURE, history).cpu[0]?.throttledPercent;
    }
    expect(throttled).toBeGreaterThan(0);
    expect(throttled).toBeLessThanOrEqual(100);
    busy.kill('SIGKILL');
  });

  it('skips a container whose cgroup does not exist and a process that exits between ticks', async () => {
    const id = randomContainerID();
    const pod = makePod({ containers: [{ id }] });
    const holder = await Holder.start(pod, id);
    const scanner = new Scanner();
    const missing: PodTarget = { uid: pod.uid, containers: [{ name: 'gone', containerID: `containerd://${randomContainerID()}` }] };
    const scan = scanner.tick([target(pod), missing]);
    expect(scan.pods.map((p) => p.containers.map((c) => [c.name, c.found, c.processes]))).toEqual([
      [['app', true, 1]],
      [['gone', false, 0]],
    ]);
    holder.kill();
    await new Promise((resolve) => holder.child.once('exit', resolve));
    expect(podOf(scanner.tick([target(pod)])).processes).toEqual([]);
  });
});

describe.runIf(available)('node agent scan when the agent runs out of fds', () => {
  it('reads by path instead of holding processes open, and still counts right', async () => {
    const id = randomContainerID();
    const pod = makePod({ containers: [{ id }] });
    const holders = await Promise.all([1, 2, 3].map(() => Holder.start(pod, id)));
    for (const holder of holders) await holder.setFds(5); // 8 fds each
    // A separate Node process that uses up its fds but three, then scans holding at most one process
    // open: that one takes two fds, the others and the cgroup files are read by path with the last.
    const script = `
      import fs from 'node:fs';
      import { Scanner } from ${JSON.stringify(new URL('../../src/node-agent/index.ts', import.meta.url).pathname)};
      const scanner = new Scanner({ maxHeldProcesses: 1 });
      const hog = [];
      for (;;) { try { hog.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
      for (let i = 0; i < 3; i++) fs.closeSync(hog.pop());
      const pods = JSON.parse(process.argv[1]);
      const first = scanner.tick(pods);
      const second = scanner.tick(pods);
      const result = JSON.stringify({ first: first.pods[0].processes.map((p) => p.fds), second: second.pods[0].processes.map((p) => p.fds), held: scanner.openFds });
      // Give the fds back before printing: nothing after the scan may depend on having none.
      for (const fd of hog) fs.closeSync(fd);
      fs.writeSync(1, result + String.fromCharCode(10));
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([target(pod)])], {
      encoding: 'utf8',
    });
    const result = JSON.parse(output) as { first: number[]; second: number[]; held: number };
    expect(result.first).toEqual([8, 8, 8]);
    expect(result.second).toEqual([8, 8, 8]);
    expect(result.held).toBeGreaterThanOrEqual(2); // the one process held open
    expect(result.held).toBeLessThanOrEqual(3); // all there was
  });
});

describe.runIf(unifiedAvailable)('node agent scan on this machine’s cgroup2 mount (membership only)', () => {
  it('systemd names, CRI-O + crun: finds the process in the scope’s `container` sub-cgroup', async () => {
    const id = randomContainerID();
    const pod = makePod({ hierarchy: 'unified', driver: 'systemd', runtime: 'crio', qos: 'BestEffort', containers: [{ id }] });
    const uid_ = pod.uid.replaceAll('-', '_');
    expect(pod.payloadPath(id)).toBe(
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice/crio-${id}.scope/container`,
    );
    const holder = await Holder.start(pod, id);
    await holder.setFds(5);
    const scanner = new Scanner({ cgroupRoot: '/sys/fs/cgroup/unified' });
    expect(scanner.layout.version).toBe('v2');
    const scan = scanner.tick([{ uid: pod.uid, containers: [{ name: 'web', containerID: `cri-o://${id}` }] }]);
    const figures = podOf(scan);
    expect(figures.processes.map((p) => [p.pid, p.fds, p.threads])).toEqual([[holder.pid, 8, 1]]);
    // No controllers are enabled on this mount: no pids or CPU figures, and no error for their absence.
    expect(figures.pidsChain).toEqual([]);
    expect(figures.containers).toEqual([{ name: 'web', found: true, processes: 1 }]);
    scanner.close();
  });
});
