// The node agent end to end under --reports=all, entering pod netns (the SYS_ADMIN mode): listen
// queues per pod netns, GOMAXPROCS against the CPU quota, and the report write rate in steady state,
// counted at the API server's audit log.
//   - a listener with backlog 5 that never accepts, flooded inside its pod's netns: ListenQueuePressure
//     on that pod only (port, accept queue, backlog, somaxconn); the neighbour pod shows no drops;
//   - with syncookies off and the client's ACKs dropped by nftables: SYN-queue drops, no overflows, and
//     the report says which queue;
//   - drops in the node's own netns (where hostNetwork pods live) go to the node-level metric, never
//     onto the hostNetwork pod's report;
//   - a Go binary from an old go.mod under a 0.5-CPU quota runs GOMAXPROCS 2: GOMAXPROCSMismatch; the
//     same binary with GOMAXPROCS=1 in its pod spec: none;
//   - pods in steady state: at most one report write per pod per minute (audit log).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConcurrencyReport } from '../../src/api/index.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { connectionFromKubeconfig } from '../../src/kube/kubeconfig.ts';
import { runAgent } from '../../src/node-agent/index.ts';
import { createLogger } from '../../src/runtime/index.ts';
import { buildGoFixture, goAvailable } from '../fixtures/go/build.ts';
import { isCgroupV1Available } from '../support/cgroups.ts';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { getReport, reportCondition, waitForReport as waitForReportOf } from '../support/reports.ts';
import { Holder } from '../support/holder-processes.ts';
import { FLOOD_SCRIPT, isNetnsAvailable, isNftAvailable, LISTENER_SCRIPT, listenerArgv, TestNetns, waitForLine } from '../support/netns.ts';
import { KubeletPod, type KubeletPodSpec } from '../support/pods.ts';
import { requirement } from '../support/require.ts';

const runs = requirement(
  isCgroupV1Available() && goAvailable() && isNetnsAvailable() && isNftAvailable() && os.availableParallelism() >= 2,
  'root, cgroup v1, Go, iproute2 and nftables (hack/install-system-deps.sh), and at least 2 CPUs',
);

const NODE = 'agent-node-2';
const ns = 'net';
const STEADY_PODS = 4;

let cluster: Cluster;
let agentClient: KubeClient;
const stopAgent = new AbortController();
let agentDone: Promise<void> | undefined;
let metricsPort = 0;
const pods: KubeletPod[] = [];
const namespaces: TestNetns[] = [];
const hostProcesses: ChildProcess[] = [];
let steadySince = 0;
const podLogRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-agent-logs-'));

async function pod(spec: Omit<KubeletPodSpec, 'namespace' | 'nodeName'>): Promise<KubeletPod> {
  const created = await KubeletPod.create(cluster, { namespace: ns, nodeName: NODE, ...spec });
  pods.push(created);
  return created;
}

function netns(label: string): TestNetns {
  const created = TestNetns.create(label);
  namespaces.push(created);
  return created;
}

const report = (name: string): Promise<ConcurrencyReport | undefined> => getReport(cluster, ns, name);
const condition = reportCondition;
const waitForReport = (name: string, check: (r: ConcurrencyReport) => boolean, timeoutMs?: number): Promise<ConcurrencyReport> =>
  waitForReportOf(cluster, ns, name, check, timeoutMs);

/** A pod whose one container is a never-accepting listener (backlog 5, port 8080) inside `net`. */
async function listenerPod(name: string, net: TestNetns): Promise<KubeletPod> {
  const created = await pod({ name, labels: { guard: 'on' }, containers: [{ name: 'web' }] });
  const [command, ...args] = listenerArgv(net, 8080, 5);
  const listener = created.spawn('web', command as string, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(listener, 'listening');
  await created.markRunning();
  return created;
}

beforeAll(async () => {
  if (!runs) return;
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(ns);
  const identity = await cluster.controlPlane.issueClient('node-agent-e2e', ['system:masters']);
  const kubeconfig = path.join(cluster.controlPlane.workDir, 'node-agent.kubeconfig');
  fs.writeFileSync(kubeconfig, identity.kubeconfig, { mode: 0o600 });
  agentClient = new KubeClient(await connectionFromKubeconfig({ path: kubeconfig }));
  // Any drop is a Warning; Critical is out of reach, so the level does not depend on the rate's window.
  await cluster.apply(`apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: guarded}
spec:
  match:
    podSelector: {matchLabels: {guard: "on"}}
  pressure:
    listenQueue: {warningDropsPerMinute: 1, criticalDropsPerMinute: 1000000}
`);
  // Steady pods first: the write rate is measured from their first report to the last test.
  for (let i = 0; i < STEADY_PODS; i++) {
    const steady = await pod({ name: `steady-${i}`, labels: { guard: 'on' }, containers: [{ name: 'app' }] });
    const holder = await Holder.start(steady.cgroups, steady.containerID('app'), { nofile: 1024 });
    await holder.setFds(20 + i);
    await holder.setThreads(2);
    await steady.markRunning();
  }
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  agentDone = runAgent({
    nodeName: NODE,
    namespace: 'concurrency-guard',
    procRoot: '/proc',
    cgroupRoot: '/sys/fs/cgroup',
    podLogRoot,
    interval: 1_000,
    reports: 'all',
    enterNetns: true,
    metricsPort: 0,
    healthPort: 0,
    host: '127.0.0.1',
    client: agentClient,
    log: createLogger({ name: 'agent-under-test', level: 'error' }),
    onListening: (ports) => {
      metricsPort = ports.metricsPort;
      listening();
    },
  }, stopAgent.signal);
  await ready;
  for (let i = 0; i < STEADY_PODS; i++) await waitForReport(`steady-${i}`, () => true);
  // Every steady pod has its report (created on the first tick that saw it): steady state from here.
  steadySince = Date.now() + 2_000;
});

afterAll(async () => {
  stopAgent.abort();
  await agentDone;
  for (const child of hostProcesses) child.kill('SIGKILL');
  for (const created of pods) await created.cleanup().catch(() => undefined);
  for (const net of namespaces) net.destroy();
  agentClient?.close();
  await cluster?.stop();
  fs.rmSync(podLogRoot, { recursive: true, force: true });
});

describe.runIf(runs)('node agent, --reports=all, entering pod netns', () => {
  it('a flooded listener: ListenQueuePressure on its pod only, with port, accept queue, backlog and somaxconn', async () => {
    const floodedNet = netns('flooded');
    const quietNet = netns('neighbour');
    await listenerPod('flooded', floodedNet);
    await listenerPod('neighbour', quietNet);
    await waitForReport('flooded', (r) => condition(r, 'ListenQueuePressure')?.status === 'False');
    await floodedNet.flood(8080, 30); // 6 queued (backlog 5 holds 6), 24 dropped
    const flooded = await waitForReport('flooded', (r) => condition(r, 'ListenQueuePressure')?.status === 'True');
    const queue = flooded.status?.runtime?.listenQueue;
    expect(queue?.level).toBe('Warning');
    expect(queue?.overflowsPerMinute).toBeGreaterThanOrEqual(24);
    expect(queue?.reqQFullDropsPerMinute).toBe(0);
    expect(queue?.listeners).toEqual([{ port: 8080, acceptQueue: 6, backlog: 5 }]);
    expect(queue?.somaxconn).toBe(4096);
    expect(condition(flooded, 'ListenQueuePressure')?.message).toMatch(/^\d+ drops\/min: accept queue full on :8080 \(6\/5\)$/);
    expect(flooded.status?.summary?.dropsPerMinute).toBe(queue?.dropsPerMinute);
    const neighbour = await report('neighbour');
    expect(neighbour?.status?.runtime?.listenQueue).toMatchObject({ level: 'OK', overflowsPerMinute: 0, dropsPerMinute: 0 });
    expect(condition(neighbour, 'ListenQueuePressure')).toMatchObject({ status: 'False', reason: 'OK' });
  });

  it('SYN queue full with syncookies off (ACKs dropped by nftables): SYN-queue drops, no overflows, and the report says which', async () => {
    const net = netns('synq');
    net.sysctl('net.ipv4.tcp_syncookies', 0);
    net.dropAcksTo(8080);
    await listenerPod('synq', net);
    await waitForReport('synq', (r) => condition(r, 'ListenQueuePressure')?.status === 'False');
    await net.flood(8080, 30);
    const synq = await waitForReport('synq', (r) => condition(r, 'ListenQueuePressure')?.status === 'True');
    const queue = synq.status?.runtime?.listenQueue;
    expect(queue?.overflowsPerMinute).toBe(0);
    expect(queue?.reqQFullDropsPerMinute).toBeGreaterThanOrEqual(24);
    expect(condition(synq, 'ListenQueuePressure')?.message).toMatch(/^\d+ drops\/min: SYN queue full, syncookies off$/);
  });

  it('drops in the node’s netns go to the node-level metric, never onto a hostNetwork pod’s report', async () => {
    const hostPod = await pod({ name: 'host-net', labels: { guard: 'on' }, hostNetwork: true, containers: [{ name: 'app' }] });
    await Holder.start(hostPod.cgroups, hostPod.containerID('app'));
    await hostPod.markRunning();
    await waitForReport('host-net', (r) => r.status?.runtime?.fileDescriptors !== undefined);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const listener = spawn('python3', ['-c', LISTENER_SCRIPT, '4', String(port), '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    hostProcesses.push(listener);
    await waitForLine(listener, 'listening');
    const flood = spawn('python3', ['-c', FLOOD_SCRIPT, '4', String(port), '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
    hostProcesses.push(flood);
    await waitForLine(flood, 'sent');
    await waitUntil('node-level drops', async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('concurrency_guard_node_listen_drops_per_minute '));
      return line !== undefined && Number(line.split(' ')[1]) > 0;
    }, 20_000, 300);
    await sleep(2_000);
    const hostReport = await report('host-net');
    expect(hostReport?.status?.runtime?.listenQueue).toBeUndefined();
    expect(condition(hostReport, 'ListenQueuePressure')).toBeUndefined();
  });

  it('an old-go.mod Go binary under a 0.5-CPU quota: GOMAXPROCSMismatch; with GOMAXPROCS=1 in the pod spec: none', async () => {
    const binary = buildGoFixture('old-gomod');
    const goVersion = execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
    const loose = await pod({ name: 'old-go', labels: { guard: 'on' }, containers: [{ name: 'app', cpuLimitMillicores: 500 }] });
    const pinned = await pod({
      name: 'old-go-pinned',
      labels: { guard: 'on' },
      containers: [{ name: 'app', cpuLimitMillicores: 500, env: [{ name: 'GOMAXPROCS', value: '1' }] }],
    });
    const looseProcess = loose.spawn('app', binary, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pinnedProcess = pinned.spawn('app', binary, [], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, GOMAXPROCS: '1' } });
    // What the runtime really picked: the agent's prediction is judged against it.
    await waitForLine(looseProcess, 'gomaxprocs 2');
    await waitForLine(pinnedProcess, 'gomaxprocs 1');
    await loose.markRunning();
    await pinned.markRunning();
    const mismatched = await waitForReport('old-go', (r) => condition(r, 'GOMAXPROCSMismatch')?.status === 'True');
    expect(mismatched.status?.runtime?.go).toEqual([
      { container: 'app', goVersion, effectiveGOMAXPROCS: 2, source: 'go-default', quotaCores: 0.5, mismatch: true },
    ]);
    expect(condition(mismatched, 'GOMAXPROCSMismatch')?.message).toMatch(/^GOMAXPROCS=2 on 0\.5 CPU \(containermaxprocs=0\)/);
    // The throttled share is measured, never asserted: it depends on the machine's load.
    const withShare = await waitForReport('old-go', (r) => r.status?.runtime?.cpu?.[0]?.throttledPercent !== undefined);
    expect(withShare.status?.runtime?.cpu?.[0]).toMatchObject({ container: 'app', quotaCores: 0.5 });
    const fine = await waitForReport('old-go-pinned', (r) => condition(r, 'GOMAXPROCSMismatch') !== undefined);
    expect(condition(fine, 'GOMAXPROCSMismatch')).toMatchObject({ status: 'False' });
    expect(fine.status?.runtime?.go).toEqual([
      { container: 'app', goVersion, effectiveGOMAXPROCS: 1, source: 'pod-spec', quotaCores: 0.5, mismatch: false },
    ]);
  });

  it('steady state: at most one report write per pod per minute, counted at the API server', async () => {
    const windowMs = 70_000;
    const wait = steadySince + windowMs - Date.now();
    if (wait > 0) await sleep(wait);
    const until = Date.now();
    const writes = cluster.auditEvents((e) =>
      e.objectRef?.resource === 'concurrencyreports' &&
      ['create', 'patch', 'update', 'delete'].includes(e.verb) &&
      (e.objectRef.name ?? '').startsWith('steady-') &&
      Date.parse(e.stageTimestamp) >= steadySince,
    );
    const perPod = new Map<string, number>();
    for (const e of writes) perPod.set(e.objectRef?.name ?? '', (perPod.get(e.objectRef?.name ?? '') ?? 0) + 1);
    const minutes = (until - steadySince) / 60_000;
    console.log(`steady state: ${writes.length} report writes for ${STEADY_PODS} pods over ${minutes.toFixed(2)} min`);
    for (let i = 0; i < STEADY_PODS; i++) expect((perPod.get(`steady-${i}`) ?? 0) / minutes).toBeLessThanOrEqual(1);
    // And they were written at all (the agent is alive and the audit log sees its writes).
    const all = cluster.auditEvents((e) => e.objectRef?.resource === 'concurrencyreports' && e.verb === 'patch' && e.user.username === 'node-agent-e2e');
    expect(all.length).toBeGreaterThanOrEqual(STEADY_PODS);
  });
});
