// The node agent end to end under --reports=problems: a real API server, real processes in
// kubelet-layout cgroups on this machine, Pod objects whose status says what the kubelet would. The
// agent runs in this process (runAgent) under its own client certificate, so the audit log names it.
//   - a Go service leaking response bodies climbs toward RLIMIT_NOFILE: FileDescriptorPressure Warning,
//     then Critical at the policy's thresholds, with count, limit, process, growth and time left, and
//     an Event on the pod; no report while it is OK;
//   - threads toward the pod's pids.max, and toward RLIMIT_NPROC shared by two pods of one UID;
//   - a container that died of fd exhaustion: its report names the class and the signature line;
//   - a pod no policy matches: metrics, no report; pods in kube-system and the agent's own namespace: nothing;
//   - a secret in a process's environment, its command line and an open file's path: never in a
//     report, an Event, a log line of the agent or /metrics.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
import { streamContainerLog } from '../support/pod-logs.ts';
import { KubeletPod, type KubeletPodSpec } from '../support/pods.ts';
import { requirement } from '../support/require.ts';

const runs = requirement(isCgroupV1Available() && goAvailable(), 'root, cgroup v1 (pids, cpu, cpuacct) and Go');

const NODE = 'agent-node-1';
const ns = 'shop';
const secret = `cgsecret${randomBytes(8).toString('hex')}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-agent-e2e-'));
const podLogRoot = path.join(tmp, 'pods');
const secretFile = path.join(tmp, `${secret}.db`);

let cluster: Cluster;
let agentClient: KubeClient;
const stopAgent = new AbortController();
let agentDone: Promise<void> | undefined;
let metricsPort = 0;
const agentLog: string[] = [];
const pods: KubeletPod[] = [];

async function pod(spec: Omit<KubeletPodSpec, 'namespace' | 'nodeName'>): Promise<KubeletPod> {
  const created = await KubeletPod.create(cluster, { namespace: ns, nodeName: NODE, ...spec });
  pods.push(created);
  return created;
}

const report = (name: string): Promise<ConcurrencyReport | undefined> => getReport(cluster, ns, name);
const condition = reportCondition;
const waitForReport = (name: string, check: (r: ConcurrencyReport) => boolean, timeoutMs?: number): Promise<ConcurrencyReport> =>
  waitForReportOf(cluster, ns, name, check, timeoutMs);

async function metricsText(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  return response.text();
}

function metricValue(text: string, name: string, podName: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`pod="${podName}"`) && l.includes(`namespace="${ns}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function waitForLine(child: ChildProcess, expected: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`no "${expected}"`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes(expected)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`exited before "${expected}"`)));
  });
}

beforeAll(async () => {
  if (!runs) return;
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(ns, { team: 'shop' });
  const identity = await cluster.controlPlane.issueClient('node-agent-e2e', ['system:masters']);
  const kubeconfig = path.join(cluster.controlPlane.workDir, 'node-agent.kubeconfig');
  fs.writeFileSync(kubeconfig, identity.kubeconfig, { mode: 0o600 });
  agentClient = new KubeClient(await connectionFromKubeconfig({ path: kubeconfig }));
  // Guarded pods only; the fd thresholds are the policy's, the thread ones the built-in 80/95.
  await cluster.apply(`apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: guarded}
spec:
  match:
    podSelector: {matchLabels: {guard: "on"}}
  pressure:
    fileDescriptors: {warningPercent: 30, criticalPercent: 60}
`);
  fs.mkdirSync(podLogRoot, { recursive: true });
  fs.writeFileSync(secretFile, 'not really a database\n');
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  agentDone = runAgent({
    nodeName: NODE,
    namespace: 'concurrency-guard',
    procRoot: '/proc',
    cgroupRoot: '/sys/fs/cgroup',
    podLogRoot,
    interval: 1_000,
    reports: 'problems',
    enterNetns: false,
    metricsPort: 0,
    healthPort: 0,
    host: '127.0.0.1',
    client: agentClient,
    // Growth from five seconds of one-second samples (the default waits a minute of ten-second ticks).
    trend: { windowMs: 60_000, minSpanMs: 5_000, minSamples: 3 },
    log: createLogger({ name: 'agent-under-test', level: 'debug', destination: { write: (line: string) => void agentLog.push(line) } }),
    onListening: (ports) => {
      metricsPort = ports.metricsPort;
      listening();
    },
  }, stopAgent.signal);
  await ready;
});

afterAll(async () => {
  stopAgent.abort();
  await agentDone;
  for (const created of pods) await created.cleanup().catch(() => undefined);
  agentClient?.close();
  await cluster?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(runs)('node agent, --reports=problems', () => {
  it('a Go service leaking response bodies: Warning then Critical at the policy thresholds, with the process, growth and time left', async () => {
    const binary = buildGoFixture('body-leaker');
    const leaky = await pod({ name: 'leaky', labels: { guard: 'on' }, containers: [{ name: 'api' }] });
    await leaky.markRunning();
    // 4 requests/s, two fds each (client and server end in one process): ~480 fds/min toward 256.
    const leaker = leaky.spawn('api', binary, ['-nofile', '256', '-rate', '4', '-tag', secret], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, CG_SECRET_TOKEN: secret },
    });
    await waitForLine(leaker, 'leaking');
    // No report while the pod is OK (problems mode): the first one written is at Warning already.
    const levels: string[] = [];
    let critical: ConcurrencyReport | undefined;
    await waitUntil('FileDescriptorPressure Critical', async () => {
      const current = await report('leaky');
      const c = condition(current, 'FileDescriptorPressure');
      if (c && levels.at(-1) !== c.reason) levels.push(c.reason);
      if (c?.reason === 'Critical') critical = current;
      return critical !== undefined;
    }, 90_000, 250);
    expect(levels).toEqual(['Warning', 'Critical']);
    const fds = critical?.status?.runtime?.fileDescriptors;
    expect(fds?.level).toBe('Critical');
    expect(fds?.limit).toBe(256);
    expect(fds?.open).toBeGreaterThanOrEqual(154); // 60% of 256, rounded up
    expect(fds?.open).toBeLessThan(256);
    expect(fds?.process).toEqual({ pid: leaker.pid, comm: path.basename(binary).slice(0, 15), container: 'api', count: fds?.open, limit: 256 });
    // 480/min at the nominal rate; a loaded machine runs the Go ticker late, never early.
    expect(fds?.growthPerMinute).toBeGreaterThan(200);
    expect(fds?.growthPerMinute).toBeLessThan(600);
    const expectedSeconds = ((256 - (fds?.open ?? 0)) / (fds?.growthPerMinute ?? 1)) * 60;
    expect(Math.abs((fds?.secondsToExhaustion ?? -100) - expectedSeconds)).toBeLessThanOrEqual(1);
    expect(critical?.status?.summary?.level).toBe('Critical');
    expect(critical?.status?.summary?.fds).toMatch(/^\d+\/256$/);
    expect(critical?.spec).toEqual({ podName: 'leaky', podUID: leaky.uid, nodeName: NODE });
    // An Event on the pod when it turned Critical.
    await waitUntil('PressureCritical event', async () => {
      const events = await cluster.getJson<{ items: { reason?: string; regarding?: { name?: string; uid?: string } }[] }>(['events.events.k8s.io', '-n', ns]);
      return events.items.some((e) => e.reason === 'PressureCritical' && e.regarding?.name === 'leaky' && e.regarding.uid === leaky.uid);
    }, 20_000, 300);
    leaker.kill('SIGKILL');
  });

  it('threads toward the pod’s pids.max: ThreadPressure names pids.max', async () => {
    const pinned = await pod({ name: 'pinned', labels: { guard: 'on' }, podPidsMax: 40, containers: [{ name: 'worker' }] });
    const holder = await Holder.start(pinned.cgroups, pinned.containerID('worker'));
    await holder.setThreads(35); // 36 tasks of 40: 90%, Warning under the built-in 80/95
    await pinned.markRunning();
    const current = await waitForReport('pinned', (r) => condition(r, 'ThreadPressure')?.status === 'True');
    expect(current.status?.runtime?.threads).toEqual({ level: 'Warning', threads: 36, limit: 40, percent: 90, bindingLimit: 'pids.max' });
    expect(condition(current, 'ThreadPressure')).toMatchObject({ status: 'True', reason: 'Warning', message: '90% of pids.max (40)' });
  });

  it('threads toward RLIMIT_NPROC shared by two pods of one non-root UID: both name RLIMIT_NPROC', async () => {
    const first = await pod({ name: 'uid-a', labels: { guard: 'on' }, containers: [{ name: 'app' }] });
    const second = await pod({ name: 'uid-b', labels: { guard: 'on' }, containers: [{ name: 'app' }] });
    const a = await Holder.start(first.cgroups, first.containerID('app'), { nproc: 30, uid: 23456 });
    const b = await Holder.start(second.cgroups, second.containerID('app'), { nproc: 30, uid: 23456 });
    await a.setThreads(9); // 10 tasks
    await b.setThreads(13); // 14 tasks: the UID has 24 of 30, 80%
    await first.markRunning();
    await second.markRunning();
    const ra = await waitForReport('uid-a', (r) => r.status?.runtime?.threads?.bindingLimit === 'RLIMIT_NPROC');
    const rb = await waitForReport('uid-b', (r) => r.status?.runtime?.threads?.bindingLimit === 'RLIMIT_NPROC');
    expect(ra.status?.runtime?.threads).toMatchObject({ level: 'Warning', threads: 10, limit: 30, percent: 80, bindingLimit: 'RLIMIT_NPROC' });
    expect(rb.status?.runtime?.threads).toMatchObject({ level: 'Warning', threads: 14, limit: 30, percent: 80, bindingLimit: 'RLIMIT_NPROC' });
  });

  it('a crash-looping container: its report shows each crash’s class and signature line', async () => {
    const binary = buildGoFixture('fd-exhauster');
    const crashy = await pod({ name: 'crashy', labels: { guard: 'on' }, containers: [{ name: 'app' }] });
    await crashy.markRunning();
    const ref = { namespace: ns, name: 'crashy', uid: crashy.uid };
    // The first instance opens the secret-named file until EMFILE and exits 1, logging the path.
    const first = crashy.spawn('app', binary, ['-nofile', '64', '-path', secretFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exitCode = await streamContainerLog(podLogRoot, ref, 'app', 0, first);
    expect(exitCode).toBe(1);
    expect(fs.readFileSync(path.join(podLogRoot, `${ns}_crashy_${crashy.uid}`, 'app', '0.log'), 'utf8')).toContain(secret);
    crashy.spawn('app', 'sleep', ['3600']);
    await crashy.recordRestart('app', exitCode);
    const current = await waitForReport('crashy', (r) => r.status?.runtime?.lastCrash !== undefined);
    expect(current.status?.runtime?.lastCrash).toMatchObject({
      container: 'app',
      exitCode: 1,
      class: 'fd-exhaustion',
      signature: 'giving up: open <path>: too many open files',
    });
    expect(current.status?.summary?.level).toBe('Warning');
    // It loops: the next instance dies of Go's own thread cap, and the report follows the new crash.
    const threads = buildGoFixture('thread-exhauster');
    const second = crashy.spawn('app', threads, ['-max-threads', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const secondExit = await streamContainerLog(podLogRoot, ref, 'app', 1, second);
    expect(secondExit).toBe(2);
    await crashy.recordRestart('app', secondExit);
    const again = await waitForReport('crashy', (r) => r.status?.runtime?.lastCrash?.class === 'go-thread-limit');
    expect(again.status?.runtime?.lastCrash).toMatchObject({
      container: 'app',
      exitCode: 2,
      class: 'go-thread-limit',
      signature: 'runtime: program exceeds 50-thread limit',
    });
  });

  it('a pod no policy matches: metrics, but no report; a matched pod at OK: no report either', async () => {
    const loose = await pod({ name: 'loose', containers: [{ name: 'app' }] });
    const quiet = await pod({ name: 'quiet', labels: { guard: 'on' }, containers: [{ name: 'app' }] });
    const looseHolder = await Holder.start(loose.cgroups, loose.containerID('app'), { nofile: 100 });
    await looseHolder.setFds(92); // 95 of 100: Critical if it were matched
    const quietHolder = await Holder.start(quiet.cgroups, quiet.containerID('app'), { nofile: 1000 });
    await quietHolder.setFds(7); // 10 of 1000
    // The secret-named file held open by a process of a matched pod.
    quiet.spawn('app', '/bin/sh', ['-c', 'exec 3<"$0"; exec sleep 3600', secretFile]);
    await loose.markRunning();
    await quiet.markRunning();
    await waitUntil('metrics of loose and quiet', async () => {
      const text = await metricsText();
      return metricValue(text, 'concurrency_guard_pod_fd_percent', 'loose') === 95 && metricValue(text, 'concurrency_guard_pod_fd_percent', 'quiet') === 1;
    }, 30_000, 300);
    const text = await metricsText();
    expect(metricValue(text, 'concurrency_guard_pod_pressure_level', 'loose')).toBe(2);
    expect(metricValue(text, 'concurrency_guard_pod_policy_matched', 'loose')).toBe(0);
    expect(metricValue(text, 'concurrency_guard_pod_policy_matched', 'quiet')).toBe(1);
    await sleep(3_000); // three more ticks
    expect(await report('loose')).toBeUndefined();
    expect(await report('quiet')).toBeUndefined();
  });

  it('pods in kube-system and the agent’s own namespace are not scanned at all: no metrics, no report', async () => {
    await cluster.createNamespace('concurrency-guard');
    const hidden: KubeletPod[] = [];
    for (const namespace of ['kube-system', 'concurrency-guard']) {
      const created = await KubeletPod.create(cluster, { namespace, nodeName: NODE, name: 'busy', labels: { guard: 'on' }, containers: [{ name: 'app' }] });
      pods.push(created);
      hidden.push(created);
      const holder = await Holder.start(created.cgroups, created.containerID('app'), { nofile: 100 });
      await holder.setFds(92); // Critical if it were scanned
      await created.markRunning();
    }
    await sleep(4_000);
    const text = await metricsText();
    expect(text).not.toMatch(/namespace="(kube-system|concurrency-guard)"/);
    for (const created of hidden) {
      const result = await cluster.kubectl(['get', 'concurrencyreport', 'busy', '-n', created.spec.namespace], { allowFailure: true });
      expect(result.code).not.toBe(0);
    }
  });

  it('the planted secret never appears in reports, events, agent logs or /metrics', async () => {
    // The secret really is where the agent could have read it: a live process's environment and
    // command line (the leaker was killed; start another), and an open file's path.
    const binary = buildGoFixture('body-leaker');
    const leaky = pods.find((p) => p.spec.name === 'leaky') as KubeletPod;
    const again = leaky.spawn('api', binary, ['-nofile', '4096', '-rate', '1', '-tag', secret], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, CG_SECRET_TOKEN: secret },
    });
    await waitForLine(again, 'leaking');
    expect(fs.readFileSync(`/proc/${again.pid}/environ`, 'latin1')).toContain(secret);
    expect(fs.readFileSync(`/proc/${again.pid}/cmdline`, 'latin1')).toContain(secret);
    const quiet = pods.find((p) => p.spec.name === 'quiet') as KubeletPod;
    const holders = quiet.cgroups.pids('pids', quiet.containerID('app'));
    const targets = holders.flatMap((pid) => {
      try {
        return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return [];
      }
    });
    expect(targets).toContain(secretFile);
    await sleep(5_000); // ticks over all of it
    const reports = (await cluster.kubectl(['get', 'concurrencyreports', '-A', '-o', 'json'])).stdout;
    const events = (await cluster.kubectl(['get', 'events.events.k8s.io', '-A', '-o', 'json'])).stdout;
    const metrics = await metricsText();
    const logs = agentLog.join('');
    expect(reports).toContain('leaky'); // the searches are over the real thing
    expect(logs).toContain('report written');
    expect(metrics).toContain('concurrency_guard_pod_fd_percent');
    for (const [where, text] of Object.entries({ reports, events, metrics, logs })) {
      expect(text.includes(secret), `${where} holds the secret`).toBe(false);
      expect(text.includes(tmp), `${where} holds a path`).toBe(false);
      expect(text.includes('/proc/'), `${where} holds a /proc path`).toBe(false);
      expect(text.includes('/sys/fs/cgroup'), `${where} holds a cgroup path`).toBe(false);
    }
    // Reports and logs by the agent's field manager and identity only.
    const writers = new Set(cluster.auditEvents((e) => e.objectRef?.resource === 'concurrencyreports' && e.verb !== 'get' && e.verb !== 'list' && e.verb !== 'watch').map((e) => e.user.username));
    expect([...writers]).toEqual(['node-agent-e2e']);
  });
});
