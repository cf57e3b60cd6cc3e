// Issue 4: Lease leader election between separate processes. One leads; kill -9 of the leader hands over
// within lease + retry + 1 s; SIGTERM hands over at once; a leader that cannot renew stops its work before
// the lease expires. Who wrote the Lease is read from the API server's audit log (each elector has its
// own client certificate, so its own user name).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { ApiError, KubeClient } from '../../src/kube/client.ts';
import { connectionFromKubeconfig } from '../../src/kube/kubeconfig.ts';
import { LeaderElector, microTime, type Lease } from '../../src/kube/leader-election.ts';
import { LEASES } from '../../src/kube/resources.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/elector.ts');
const LEASE_MS = 6_000;
const RETRY_MS = 1_000;

let cluster: Cluster;
const children: ChildProcess[] = [];

beforeAll(async () => {
  cluster = await startCluster({ controllerManager: false });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cluster?.stop();
});

interface ElectorLine { event: string; identity: string; at: number }

class ElectorProcess {
  readonly identity: string;
  readonly user: string;
  readonly lines: ElectorLine[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(identity: string, user: string, kubeconfig: string, namespace: string, lease: string) {
    this.identity = identity;
    this.user = user;
    this.child = spawn(process.execPath, [FIXTURE, kubeconfig, namespace, lease, identity], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(this.child);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as ElectorLine);
      } catch {
        // not one of ours
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  said(event: string): ElectorLine | undefined {
    return this.lines.find((l) => l.event === event);
  }

  get leading(): boolean {
    const events = this.lines.map((l) => l.event).filter((e) => e === 'leading' || e === 'stopped');
    return events.at(-1) === 'leading';
  }
}

async function electorKubeconfig(user: string): Promise<string> {
  const identity = await cluster.controlPlane.issueClient(user, ['system:masters']);
  const path = join(cluster.controlPlane.workDir, `${user}.kubeconfig`);
  writeFileSync(path, identity.kubeconfig, { mode: 0o600 });
  return path;
}

function leaseWrites(namespace: string, lease: string, since = 0): { user: string; verb: string; at: number }[] {
  return cluster.auditEvents((e) => e.objectRef?.resource === 'leases' && e.objectRef.namespace === namespace
    && e.objectRef.name === lease && ['create', 'update', 'patch'].includes(e.verb) && (e.responseStatus?.code ?? 0) < 300)
    .map((e) => ({ user: e.user.username, verb: e.verb, at: Date.parse(e.stageTimestamp) }))
    .filter((w) => w.at >= since);
}

describe('leader election between processes', () => {
  it('one leads; kill -9 hands over within lease + retry + 1 s; SIGTERM hands over at once', async () => {
    const ns = 'election-procs';
    const lease = 'guard-controller';
    await cluster.kubectl(['create', 'namespace', ns]);
    const [configA, configB] = [await electorKubeconfig('elector-a'), await electorKubeconfig('elector-b')];
    const a = new ElectorProcess('a-1', 'elector-a', configA, ns, lease);
    const b = new ElectorProcess('b-1', 'elector-b', configB, ns, lease);
    await waitUntil('one leader', () => a.leading || b.leading, 30_000);
    await sleep(3 * RETRY_MS); // long enough for a second leader to appear if election were broken
    expect([a.leading, b.leading].filter(Boolean)).toHaveLength(1);
    const [leader, follower] = a.leading ? [a, b] : [b, a];
    // Only the leader has written the Lease so far.
    expect(new Set(leaseWrites(ns, lease).map((w) => w.user))).toEqual(new Set([leader.user]));

    // kill -9: no release; the follower must wait out the lease.
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await leader.exited;
    // A renew the leader sent just before dying may still complete at the API server a moment later;
    // nothing may come from it once it is reaped and that moment has passed.
    const quietFrom = Date.now() + 1_000;
    await waitUntil('follower to lead', () => follower.leading, LEASE_MS + 5 * RETRY_MS);
    const killHandoverMs = follower.said('leading')!.at - killedAt;
    console.log(`[kube-leader-election] kill -9 handover took ${killHandoverMs} ms (bound ${LEASE_MS + RETRY_MS + 1_000} ms)`);
    expect(killHandoverMs).toBeLessThanOrEqual(LEASE_MS + RETRY_MS + 1_000);
    // Not before the lease could have expired either: the dead leader renewed at most a retry period before.
    expect(killHandoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 500);
    await sleep(200);
    const afterKill = leaseWrites(ns, lease, quietFrom);
    expect(afterKill.length).toBeGreaterThanOrEqual(1);
    expect(new Set(afterKill.map((w) => w.user))).toEqual(new Set([follower.user]));

    // A new candidate joins under the killed one's user; it must not take over while the lease is held.
    const configC = leader === a ? configA : configB;
    const candidate = new ElectorProcess(`${leader.identity}-restarted`, leader.user, configC, ns, lease);
    await waitUntil('candidate ready', () => candidate.said('ready') !== undefined, 15_000);
    await sleep(2 * RETRY_MS);
    expect(candidate.leading).toBe(false);

    // SIGTERM: the leader releases the Lease on its way out; the candidate takes it on its next try.
    const termAt = Date.now();
    follower.child.kill('SIGTERM');
    await waitUntil('candidate to lead', () => candidate.leading, LEASE_MS);
    const termHandoverMs = candidate.said('leading')!.at - termAt;
    console.log(`[kube-leader-election] SIGTERM handover took ${termHandoverMs} ms`);
    expect(termHandoverMs).toBeLessThanOrEqual(RETRY_MS * 1.2 + 1_000);
    const exit = await follower.exited;
    expect(exit.code).toBe(0);
    expect(follower.lines.map((l) => l.event).slice(-2)).toEqual(['stopped', 'released']);
    await sleep(200);
    // After SIGTERM: the departing leader's release write, then only the candidate's writes.
    const afterTerm = leaseWrites(ns, lease, termAt);
    expect(afterTerm[0]).toMatchObject({ user: follower.user, verb: 'update' });
    expect(new Set(afterTerm.slice(1).map((w) => w.user))).toEqual(new Set([candidate.user]));
    candidate.child.kill('SIGTERM');
    expect((await candidate.exited).code).toBe(0);
  });
});

describe('leader election in process', () => {
  let proxy: TcpProxy;
  let direct: KubeClient;
  let proxied: KubeClient;

  beforeAll(async () => {
    proxy = new TcpProxy(cluster.controlPlane.apiServerPort);
    await proxy.start();
    direct = new KubeClient(await connectionFromKubeconfig({ path: cluster.kubeconfigPath }));
    proxied = new KubeClient(await connectionFromKubeconfig({ text: cluster.controlPlane.kubeconfig({ server: proxy.url }) }), { requestTimeoutMs: 5_000 });
    await cluster.kubectl(['create', 'namespace', 'election-local']);
  });

  afterAll(async () => {
    direct?.close();
    proxied?.close();
    await proxy?.stop();
  });

  it('aborts the term signal when the lease cannot be renewed, before the lease expires for others', async () => {
    const stop = new AbortController();
    const cutOff = new LeaderElector({ client: proxied, namespace: 'election-local', name: 'renew-deadline', identity: 'cut-off' });
    const runA = cutOff.run(stop.signal);
    const term = await cutOff.whenLeading();
    expect(cutOff.isLeader).toBe(true);
    const other = new LeaderElector({ client: direct, namespace: 'election-local', name: 'renew-deadline', identity: 'other' });
    const runB = other.run(stop.signal);

    proxy.blackhole();
    const cutAt = Date.now();
    await new Promise<void>((resolve) => term.addEventListener('abort', () => resolve(), { once: true }));
    const stoppedAfterMs = Date.now() - cutAt;
    expect(cutOff.isLeader).toBe(false);
    await other.whenLeading();
    const otherLeadsAfterMs = Date.now() - cutAt;
    console.log(`[kube-leader-election] cut-off leader stopped after ${stoppedAfterMs} ms; other led after ${otherLeadsAfterMs} ms`);
    // Renew deadline 4 s after the last renew (≤ 1 s before the cut), lease 6 s.
    expect(stoppedAfterMs).toBeLessThanOrEqual(4_000 + 200);
    expect(otherLeadsAfterMs).toBeGreaterThan(stoppedAfterMs);
    proxy.heal();
    stop.abort();
    await Promise.all([runA, runB]);
  });

  it('aborts the term at the next renew when someone else takes the Lease', async () => {
    const stop = new AbortController();
    const elector = new LeaderElector({ client: direct, namespace: 'election-local', name: 'stolen', identity: 'victim' });
    const run = elector.run(stop.signal);
    const term = await elector.whenLeading();
    // An operator (or a buggy peer) overwrites the holder.
    const lease = await direct.get<Lease>(LEASES, 'election-local', 'stolen');
    await direct.replace(LEASES, { ...lease, spec: { ...lease.spec, holderIdentity: 'thief', renewTime: new Date().toISOString().replace('Z', '000Z') } });
    const stolenAt = Date.now();
    await new Promise<void>((resolve) => term.addEventListener('abort', () => resolve(), { once: true }));
    expect(Date.now() - stolenAt).toBeLessThanOrEqual(RETRY_MS + 500);
    expect(elector.observedLeader).toBe('thief');
    stop.abort();
    await run;
  });

  it('relies on this API server fact: Lease times are MicroTime with exactly six fractional digits', async () => {
    const lease = (name: string, renewTime: string): Lease => ({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'election-local' }, spec: { holderIdentity: 'x', renewTime },
    });
    const millis = await direct.create(LEASES, lease('millis', new Date().toISOString())).catch((e: unknown) => e);
    expect(millis).toBeInstanceOf(ApiError);
    expect((millis as ApiError).status).toBe(400);
    const written = await direct.create(LEASES, lease('micros', microTime(Date.UTC(2026, 10, 27, 20, 0, 0, 123))));
    expect(written.spec?.renewTime).toBe('2026-11-27T20:00:00.123000Z');
  });
});
