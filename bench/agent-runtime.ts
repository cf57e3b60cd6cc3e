// Benchmark of the whole node agent at run time (DESIGN.md targets: RSS ≤ 100 MiB and ≤ 1% of a core
// at 100 pods and a 10 s tick; report writes ≤ 1 per pod per minute in steady state). A real control
// plane; 100 Pods on one node created through the API server (test/support/pods.ts), each with two
// real processes in its kubelet-layout cgroups (half of them under a 0.5-CPU quota); the agent built
// to plain JavaScript (`npm run build` → dist/, what the image runs) and run by runAgent in a process
// of its own under --reports=all (every pod gets a report: the most writes). After a warm-up, over a
// steady window: the agent's CPU from /proc/PID/stat, its RSS from /proc/PID/status, and the report
// writes per pod per minute as the API server's audit log counts them — never the agent's counters.
// Needs root and cgroup v1 (pids, cpu, cpuacct).
//   node bench/agent-runtime.ts [--pods 100] [--interval 10000] [--warmup 40] [--window 180] [--node-flags=--max-semi-space-size=2]
// --node-flags: V8 flags for the agent's process (what the image's entrypoint would pass), e.g. a smaller
// young generation, which trades a little GC CPU for RSS.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { isCgroupV1Available } from '../test/support/cgroups.ts';
import { startCluster } from '../test/support/cluster.ts';
import { KubeletPod } from '../test/support/pods.ts';

const TARGETS = { rssMiB: 100, cpuPercent: 1, writesPerPodPerMinute: 1 };
const root = path.resolve(import.meta.dirname, '..');

function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1000 / 100); // utime + stime, 100 Hz ticks
}

function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? NaN) / 1024;
}

function loadavg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pods: { type: 'string', default: '100' },
      interval: { type: 'string', default: '10000' },
      warmup: { type: 'string', default: '40' },
      window: { type: 'string', default: '180' },
      'node-flags': { type: 'string', default: '' },
    },
  });
  if (!isCgroupV1Available()) throw new Error('bench/agent-runtime needs root and cgroup v1 pids, cpu and cpuacct hierarchies');
  const podCount = Number(values.pods);
  const intervalMs = Number(values.interval);
  console.log('building dist/ (npm run build)…');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

  const cluster = await startCluster();
  const pods: KubeletPod[] = [];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-bench-agent-runtime-'));
  let agentPid: number | undefined;
  const stopAll = async (): Promise<void> => {
    if (agentPid !== undefined) {
      try {
        process.kill(agentPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const pod of pods) pod.cleanupProcesses();
    await cluster.stop();
    fs.rmSync(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    await cluster.installCRDs();
    const ns = 'bench';
    await cluster.createNamespace(ns);
    await cluster.apply(`apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: everything}
spec:
  pressure: {}
`);
    const started = Date.now();
    for (let i = 0; i < podCount; i++) {
      const quota = i % 2 === 0 ? { cpuLimitMillicores: 500 } : {};
      const pod = await KubeletPod.create(cluster, { namespace: ns, name: `svc-${i}`, nodeName: 'bench-node', containers: [{ name: 'app', ...quota }] });
      pods.push(pod);
      for (let p = 0; p < 2; p++) pod.spawn('app', 'sleep', ['100000']);
      await pod.markRunning();
    }
    console.log(`${podCount} pods, ${podCount * 2} processes ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);

    // The agent: dist/ JavaScript, a process of its own, an identity of its own for the audit log.
    const identity = await cluster.controlPlane.issueClient('bench-node-agent', ['system:masters']);
    const kubeconfig = path.join(work, 'agent.kubeconfig');
    fs.writeFileSync(kubeconfig, identity.kubeconfig, { mode: 0o600 });
    const runner = path.join(work, 'run-agent.mjs');
    fs.writeFileSync(runner, `
import { runAgent } from ${JSON.stringify(path.join(root, 'dist/node-agent/index.js'))};
import { createLogger } from ${JSON.stringify(path.join(root, 'dist/runtime/index.js'))};
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
await runAgent({
  nodeName: 'bench-node', namespace: 'concurrency-guard', procRoot: '/proc', cgroupRoot: '/sys/fs/cgroup',
  podLogRoot: ${JSON.stringify(path.join(work, 'pods'))}, interval: ${intervalMs}, reports: 'all', enterNetns: false,
  metricsPort: 0, healthPort: 0, host: '127.0.0.1', kubeconfig: ${JSON.stringify(kubeconfig)},
  log: createLogger({ name: 'bench-agent', level: 'warn' }),
}, stop.signal);
`);
    const nodeFlags = values['node-flags'].split(' ').filter((f) => f !== '');
    const agent = spawn(process.execPath, [...nodeFlags, runner], { stdio: ['ignore', 'inherit', 'inherit'] });
    agentPid = agent.pid;
    if (agentPid === undefined) throw new Error('the agent did not start');
    const pid = agentPid;
    console.log(`agent pid ${pid}; warming up ${values.warmup} s (reports are created on the second tick)`);
    await sleep(Number(values.warmup) * 1000);

    const isAgentWrite = (e: { verb: string; user: { username: string }; objectRef?: { resource?: string } }): boolean =>
      e.objectRef?.resource === 'concurrencyreports' && e.user.username === 'bench-node-agent' && ['create', 'patch', 'update'].includes(e.verb);
    const writesBefore = cluster.auditEvents(isAgentWrite).length;
    const reportsBefore = JSON.parse((await cluster.kubectl(['get', 'concurrencyreports', '-n', ns, '-o', 'json'])).stdout) as { items: unknown[] };
    const cpuBefore = cpuMs(pid);
    const wallBefore = Date.now();
    const rssSamples: number[] = [];
    const windowMs = Number(values.window) * 1000;
    while (Date.now() - wallBefore < windowMs) {
      await sleep(Math.min(5_000, windowMs - (Date.now() - wallBefore)));
      rssSamples.push(rssMiB(pid));
    }
    const cpuSpent = cpuMs(pid) - cpuBefore;
    const wall = Date.now() - wallBefore;
    const writes = cluster.auditEvents(isAgentWrite).length - writesBefore;
    const minutes = wall / 60_000;
    const cpuPercent = (cpuSpent / wall) * 100;
    const rss = Math.max(...rssSamples);
    const writesPerPodPerMinute = writes / podCount / minutes;
    const row = (name: string, value: string): void => console.log(`  ${name.padEnd(44)} ${value}`);
    row('reports at the start of the window', String(reportsBefore.items.length));
    row('steady window', `${(wall / 1000).toFixed(0)} s, ${Math.round(wall / intervalMs)} ticks of ${intervalMs / 1000} s`);
    row('agent CPU (utime + stime)', `${cpuSpent.toFixed(0)} ms = ${cpuPercent.toFixed(2)} % of a core`);
    row('agent RSS (dist/, max over the window)', `${rss.toFixed(0)} MiB${nodeFlags.length > 0 ? ` (node ${nodeFlags.join(' ')})` : ''}`);
    row('report writes (audit log)', `${writes} = ${writesPerPodPerMinute.toFixed(3)} per pod per minute`);
    row('load average (1 min)', loadavg());
    const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log(
      `targets: RSS ≤ ${TARGETS.rssMiB} MiB ${verdict(rss <= TARGETS.rssMiB)}; CPU ≤ ${TARGETS.cpuPercent}% ${verdict(cpuPercent <= TARGETS.cpuPercent)}; ` +
        `writes ≤ ${TARGETS.writesPerPodPerMinute}/pod/min ${verdict(writesPerPodPerMinute <= TARGETS.writesPerPodPerMinute)}`,
    );
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.once('exit', resolve));
    agentPid = undefined;
  } finally {
    await stopAll();
  }
}

await main();
