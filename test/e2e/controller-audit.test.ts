// Issue 7, the audit half, through a real API server and kube-controller-manager: a policy over 50
// existing pods reaches Ready with hand-counted figures; violating pods' reports hold the exact rule ids;
// a policy change, a namespace label change and a LimitRange change each re-audit; deleting the policy
// clears its findings; a compliant pod gets no report under --reports=problems; and a stand-in node agent
// (its own field manager, through the same ReportWriter the agent uses) keeps its status.runtime and
// conditions through every controller write. The webhook's Lease is written by the test, announcing
// the generations the test says it serves, so Ready can be seen to wait for it.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIELD_MANAGER_NODE_AGENT, type ConcurrencyPolicy, type ConcurrencyReport } from '../../src/api/index.ts';
import { runController, SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL } from '../../src/controllers/index.ts';
import { KubeClient, ReportWriter, connectionFromKubeconfig } from '../../src/kube/index.ts';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';

const OWN = 'cg-audit-system';
const NS_A = 'audit-a';
const NS_B = 'audit-b';
const POLICY = 'e2e-audit-gomaxprocs';
const CONTROLLER_USER = 'e2e-audit-controller';
const WEBHOOK_LEASE = 'concurrency-guard-webhook-e2e-audit-0';
/** Long enough for the steps before the TTL test, short enough to watch reports expire. */
const REPORT_TTL_MS = 15_000;
/** Short, so that the test sees resyncs happen (and write nothing). */
const RESYNC_MS = 8_000;
let startedAt = 0;

let cluster: Cluster;
let agentWriter: ReportWriter;
let agentClient: KubeClient;
const stop = new AbortController();
let running: Promise<void>;
const logLines: { level: number; msg: string }[] = [];

/** A pod that no kubelet will run (nodeName names a node that does not exist): the audit reads its spec. */
function pod(namespace: string, name: string, cpuLimit: string | undefined, gomaxprocs: string, labels: Record<string, string> = {}): string {
  const resources = cpuLimit ? `\n      resources: {limits: {cpu: "${cpuLimit}"}}` : '';
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${namespace}
  labels: ${JSON.stringify({ app: 'e2e', ...labels })}
spec:
  nodeName: node-${name.length % 3}
  containers:
    - name: app
      image: registry.k8s.io/pause:3.10${resources}
      env: [{name: GOMAXPROCS, value: "${gomaxprocs}"}]
`;
}

function policyYaml(spec: string): string {
  return `apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: ${POLICY}}
spec:
  enforcement: Audit
  gomaxprocs: {maxOverCPULimit: 0}
${spec}`;
}

async function announce(generations: Record<string, number>): Promise<void> {
  await cluster.apply(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: ${WEBHOOK_LEASE}
  namespace: ${OWN}
  labels: {${WEBHOOK_LEASE_LABEL}: "true"}
  annotations: {${SERVED_GENERATIONS_ANNOTATION}: '${JSON.stringify(generations)}'}
spec:
  holderIdentity: e2e-audit-0
  leaseDurationSeconds: 3600
  renewTime: "${new Date().toISOString().replace('Z', '000Z')}"
`);
}

async function getPolicy(): Promise<ConcurrencyPolicy> {
  return cluster.getJson<ConcurrencyPolicy>(['ccp', POLICY]);
}

async function reports(namespace: string): Promise<Map<string, ConcurrencyReport>> {
  const list = await cluster.getJson<{ items: ConcurrencyReport[] }>(['ccr', '-n', namespace]);
  return new Map(list.items.map((r) => [r.metadata.name ?? '', r]));
}

function rules(report: ConcurrencyReport | undefined): string[] | undefined {
  return report?.status?.audit?.findings?.map((f) => `${f.rule}@${f.container ?? ''}`);
}

/** Waits for the policy status to show this generation Ready (or not) with these counts. */
async function waitForStatus(expected: { generation: number; ready: 'True' | 'False'; matched?: number; violating?: number; reason?: string }): Promise<ConcurrencyPolicy> {
  let last: ConcurrencyPolicy | undefined;
  try {
    await waitUntil(`policy status ${JSON.stringify(expected)}`, async () => {
      last = await getPolicy();
      const ready = last.status?.conditions?.find((c) => c.type === 'Ready');
      return last.status?.observedGeneration === expected.generation && ready?.status === expected.ready
        && (expected.reason === undefined || ready.reason === expected.reason)
        && (expected.matched === undefined || last.status.matchedPods === expected.matched)
        && (expected.violating === undefined || last.status.violatingPods === expected.violating);
    }, 60_000, 250);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nlast status: ${JSON.stringify(last?.status)}`);
  }
  return last!;
}

/** The stand-in agent: status.runtime, status.summary and its own condition, by its own field manager. */
async function agentWrites(namespace: string, name: string, level: 'OK' | 'Warning'): Promise<void> {
  const current = await cluster.getJson<{ metadata: { uid: string }; spec: { nodeName?: string } }>(['pod', name, '-n', namespace]);
  await agentWriter.write({ namespace, name, uid: current.metadata.uid, ...(current.spec.nodeName ? { nodeName: current.spec.nodeName } : {}) }, {
    runtime: { observedTime: '2026-11-27T12:00:00Z', fileDescriptors: { level, open: 900, limit: 1024, percent: 87.9 } },
    summary: { level, fds: '900/1k', fdPercent: 88 },
    conditions: [{ type: 'FileDescriptorPressure', status: level === 'OK' ? 'False' : 'True', reason: level, message: '900 of 1024 fds (88%)', lastTransitionTime: '2026-11-27T12:00:00Z' }],
  });
}

function expectAgentFieldsIntact(report: ConcurrencyReport | undefined): void {
  expect(report?.status?.runtime?.fileDescriptors).toEqual({ level: 'Warning', open: 900, limit: 1024, percent: 87.9 });
  expect(report?.status?.summary).toEqual({ level: 'Warning', fds: '900/1k', fdPercent: 88 });
  expect(report?.status?.conditions?.find((c) => c.type === 'FileDescriptorPressure')).toEqual({
    type: 'FileDescriptorPressure', status: 'True', reason: 'Warning', message: '900 of 1024 fds (88%)', lastTransitionTime: '2026-11-27T12:00:00Z',
  });
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(OWN);
  await cluster.createNamespace(NS_A, { team: 'a' });
  await cluster.createNamespace(NS_B, { team: 'b' });
  // audit-a: 40 compliant (limit 2, GOMAXPROCS 2), 10 violating (limit 1, GOMAXPROCS 4), 4 of them tier=batch.
  const docs: string[] = [];
  for (let i = 0; i < 40; i++) docs.push(pod(NS_A, `ok-${i}`, '2', '2'));
  for (let i = 0; i < 10; i++) docs.push(pod(NS_A, `bad-${i}`, '1', '4', i < 4 ? { tier: 'batch' } : {}));
  // audit-b (not matched until relabelled): 2 compliant, 2 violating (limit 2, GOMAXPROCS 8), 1 with no CPU limit.
  docs.push(pod(NS_B, 'b-ok-0', '2', '2'), pod(NS_B, 'b-ok-1', '2', '2'), pod(NS_B, 'b-bad-0', '2', '8'), pod(NS_B, 'b-bad-1', '2', '8'));
  docs.push(pod(NS_B, 'b-nolimit', undefined, '4'));
  // Violating pods where nothing is ever audited, in namespaces the policy's selector would match.
  docs.push(pod('kube-system', 'sys-bad', '1', '4'), pod(OWN, 'own-bad', '1', '4'));
  await cluster.kubectl(['label', 'namespace', 'kube-system', OWN, 'team=a', '--overwrite']);
  await cluster.kubectl(['apply', '-f', '-'], { input: docs.join('---\n') });

  agentClient = new KubeClient(await connectionFromKubeconfig({ path: cluster.kubeconfigPath }));
  agentWriter = new ReportWriter({ client: agentClient, fieldManager: FIELD_MANAGER_NODE_AGENT });
  // The agent found a compliant pod under pressure before any policy existed: its report exists first.
  await agentWrites(NS_A, 'ok-1', 'Warning');

  const identity = await cluster.controlPlane.issueClient(CONTROLLER_USER, ['system:masters']);
  const kubeconfig = await cluster.writeKubeconfig(`${cluster.controlPlane.workDir}/controller-audit.kubeconfig`, { certPem: identity.certPem, keyPem: identity.keyPem });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as { level: number; msg: string });
      callback();
    },
  });
  startedAt = Date.now();
  running = runController({
    namespace: OWN, leaderElect: false, reportTtl: REPORT_TTL_MS, resync: RESYNC_MS, reports: 'problems',
    certificates: 'cert-manager', webhookConfiguration: 'unused', webhookService: 'unused', certSecret: 'unused',
    kubeconfig, statusCoalesceMs: 500, log: pino({ level: 'info' }, sink),
  }, stop.signal);
  running.catch((error: unknown) => { console.error('controller failed', error); });
});

afterAll(async () => {
  stop.abort();
  await running;
  agentClient?.close();
  await cluster?.stop();
});

describe('controller audit', () => {
  it('a policy over 50 existing pods waits for the webhook, then is Ready with the right counts', async () => {
    await cluster.apply(policyYaml(`  match: {namespaceSelector: {matchLabels: {team: a}}}\n`));
    // No replica announces it yet: not Ready, and the message says why.
    await announce({});
    const waiting = await waitForStatus({ generation: 1, ready: 'False', reason: 'WebhookNotServing', matched: 50, violating: 10 });
    expect(waiting.status?.conditions?.[0]?.message).toContain(`${WEBHOOK_LEASE} does not serve it`);
    await announce({ [POLICY]: 1 });
    const ready = await waitForStatus({ generation: 1, ready: 'True', matched: 50, violating: 10 });
    expect(ready.status?.lastAuditTime).toMatch(/^2\d{3}-/);
    // kube-system and the operator's own namespace carry team=a too, but are never audited (50, not 52).
    expect((await reports('kube-system')).size).toBe(0);
    expect((await reports(OWN)).size).toBe(0);
  });

  it('records Events when the policy becomes Ready and when violations appear', async () => {
    interface Event { reason: string; type: string; note: string; regarding: { name: string; kind: string }; reportingController: string }
    let events: Event[] = [];
    await waitUntil('events for the policy', async () => {
      const list = await cluster.getJson<{ items: Event[] }>(['events.v1.events.k8s.io', '-n', 'default']);
      events = list.items.filter((e) => e.regarding.kind === 'ConcurrencyPolicy' && e.regarding.name === POLICY);
      return events.some((e) => e.reason === 'AllReplicasServing') && events.some((e) => e.reason === 'ViolationsFound');
    }, 30_000, 500);
    expect(events.find((e) => e.reason === 'AllReplicasServing')).toMatchObject({ type: 'Normal', note: 'The one webhook replica enforces generation 1.', reportingController: 'concurrencyguard.io/controller' });
    expect(events.find((e) => e.reason === 'ViolationsFound')).toMatchObject({
      type: 'Warning', note: '10 of 50 matched pods violate this policy; see their ConcurrencyReports (kubectl get ccr -A).',
    });
    // One event per change, not one per reconcile.
    expect(events.filter((e) => e.reason === 'ViolationsFound')).toHaveLength(1);
  });

  it('violating pods\' reports hold the exact rule ids; a compliant pod has none', async () => {
    const byName = await reports(NS_A);
    // 10 violators + the agent's report of ok-1.
    expect([...byName.keys()].sort()).toEqual(['bad-0', 'bad-1', 'bad-2', 'bad-3', 'bad-4', 'bad-5', 'bad-6', 'bad-7', 'bad-8', 'bad-9', 'ok-1']);
    for (let i = 0; i < 10; i++) {
      const report = byName.get(`bad-${i}`);
      expect(rules(report)).toEqual(['gomaxprocs/above-cpu-limit@app']);
      expect(report?.status?.audit?.findings?.[0]).toMatchObject({ enforcement: 'Audit', policies: [POLICY] });
      expect(report?.status?.conditions?.find((c) => c.type === 'PolicyCompliant')).toMatchObject({ status: 'False', reason: 'AuditFindings' });
      expect(report?.spec.nodeName).toBe(`node-${`bad-${i}`.length % 3}`);
    }
    expect(byName.has('ok-0')).toBe(false);
    // The agent's report of a compliant pod gets the controller's verdict too, beside the agent's fields.
    const agentMade = byName.get('ok-1');
    expect(rules(agentMade)).toEqual([]);
    expect(agentMade?.status?.conditions?.find((c) => c.type === 'PolicyCompliant')).toMatchObject({ status: 'True', reason: 'NoFindings' });
    expectAgentFieldsIntact(agentMade);
  });

  it('the agent writing after the controller keeps the controller\'s findings', async () => {
    await agentWrites(NS_A, 'bad-5', 'Warning');
    const report = (await reports(NS_A)).get('bad-5');
    expect(rules(report)).toEqual(['gomaxprocs/above-cpu-limit@app']);
    expectAgentFieldsIntact(report);
  });

  it('a policy change re-audits: tier=batch pods leave the match and lose their findings', async () => {
    await cluster.apply(policyYaml(`  match:\n    namespaceSelector: {matchLabels: {team: a}}\n    podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [batch]}]}\n`));
    await announce({ [POLICY]: 2 });
    await waitForStatus({ generation: 2, ready: 'True', matched: 46, violating: 6 });
    await waitUntil('batch pods\' findings cleared', async () => {
      const byName = await reports(NS_A);
      return [0, 1, 2, 3].every((i) => rules(byName.get(`bad-${i}`))?.length === 0);
    }, 30_000, 250);
    const byName = await reports(NS_A);
    expect(byName.get('bad-0')?.status?.conditions?.find((c) => c.type === 'PolicyCompliant')).toMatchObject({ status: 'True', reason: 'NoMatchingPolicy' });
    expect(rules(byName.get('bad-4'))).toEqual(['gomaxprocs/above-cpu-limit@app']);
    expectAgentFieldsIntact(byName.get('bad-5'));
  });

  it('a namespace label change re-audits the pods of that namespace', async () => {
    await cluster.kubectl(['label', 'namespace', NS_B, 'team=a', '--overwrite']);
    await waitForStatus({ generation: 2, ready: 'True', matched: 51, violating: 8 });
    const byName = await reports(NS_B);
    expect([...byName.keys()].sort()).toEqual(['b-bad-0', 'b-bad-1']);
    expect(rules(byName.get('b-bad-0'))).toEqual(['gomaxprocs/above-cpu-limit@app']);
  });

  it('a LimitRange change re-audits: a default CPU limit of 1 under GOMAXPROCS=4', async () => {
    await cluster.apply(`apiVersion: v1
kind: LimitRange
metadata: {name: cpu-defaults, namespace: ${NS_B}}
spec:
  limits: [{type: Container, default: {cpu: "1"}, defaultRequest: {cpu: "1"}}]
`);
    await waitForStatus({ generation: 2, ready: 'True', matched: 51, violating: 9 });
    expect(rules((await reports(NS_B)).get('b-nolimit'))).toEqual(['gomaxprocs/above-cpu-limit@app']);
  });

  it('deleting the policy clears its findings and leaves the agent\'s fields', async () => {
    await cluster.kubectl(['delete', 'ccp', POLICY]);
    await waitUntil('every report without findings, saying no policy matches', async () => {
      const all = [...(await reports(NS_A)).values(), ...(await reports(NS_B)).values()];
      return all.length > 0 && all.every((r) => rules(r)?.length === 0
        && r.status?.conditions?.find((c) => c.type === 'PolicyCompliant')?.reason === 'NoMatchingPolicy');
    }, 30_000, 250);
    const byName = await reports(NS_A);
    expectAgentFieldsIntact(byName.get('bad-5'));
    expectAgentFieldsIntact(byName.get('ok-1'));
  });

  it('quiet reports expire after --report-ttl; those the agent holds above OK stay; a gone pod\'s report goes', async () => {
    await waitUntil('quiet reports deleted', async () => {
      const a = await reports(NS_A);
      const b = await reports(NS_B);
      return [...a.keys()].sort().join() === 'bad-5,ok-1' && b.size === 0;
    }, REPORT_TTL_MS + 30_000, 500);
    const ttlDeletes = cluster.auditEvents((e) => e.verb === 'delete' && e.objectRef?.resource === 'concurrencyreports' && e.responseStatus?.code === 200);
    expect(new Set(ttlDeletes.map((e) => e.user.username))).toEqual(new Set([CONTROLLER_USER]));
    // bad-0..4 and bad-6..9 in audit-a, all three in audit-b: 12.
    expect(ttlDeletes.length).toBe(12);
    await cluster.kubectl(['delete', 'pod', 'bad-5', '-n', NS_A, '--grace-period=0', '--force']);
    await waitUntil('the report of a deleted pod deleted', async () => !(await reports(NS_A)).has('bad-5'), 30_000, 250);
  });

  it('keeps spec.nodeName current when a pod is bound after its report exists', async () => {
    await cluster.apply(policyYaml(`  match: {namespaceSelector: {matchLabels: {team: a}}}\n`));
    await cluster.kubectl(['apply', '-f', '-'], { input: pod(NS_A, 'unbound', '1', '4').replace(/ {2}nodeName: .*\n/, '') });
    await waitUntil('a report for the unbound pod', async () => rules((await reports(NS_A)).get('unbound'))?.length === 1, 30_000, 250);
    expect((await reports(NS_A)).get('unbound')?.spec.nodeName).toBeUndefined();
    await cluster.kubectl(['create', '--raw', `/api/v1/namespaces/${NS_A}/pods/unbound/binding`, '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'unbound' }, target: { apiVersion: 'v1', kind: 'Node', name: 'node-late' } }),
    });
    await waitUntil('the report follows the pod to its node', async () => (await reports(NS_A)).get('unbound')?.spec.nodeName === 'node-late', 30_000, 250);
  });

  it('a resync re-evaluates every pod and writes no report that would not change', async () => {
    const reportWrites = (): number => cluster.auditEvents((e) => e.objectRef?.resource === 'concurrencyreports'
      && ['create', 'patch', 'update'].includes(e.verb) && e.user.username === CONTROLLER_USER).length;
    let previous = -1;
    await waitUntil('report writes settled', () => {
      const now = reportWrites();
      const settled = now === previous;
      previous = now;
      return settled;
    }, 60_000, 3_000);
    const auditedBefore = Date.parse((await getPolicy()).status?.lastAuditTime ?? '');
    await new Promise((resolve) => setTimeout(resolve, 2 * RESYNC_MS + 1_000));
    expect(reportWrites()).toBe(previous);
    // A pass did run in between: the policy says when it last completed.
    expect(Date.parse((await getPolicy()).status?.lastAuditTime ?? '')).toBeGreaterThan(auditedBefore);
  });

  it('status writes were coalesced, and every write was by the controller\'s identity', () => {
    const statusWrites = cluster.auditEvents((e) => e.objectRef?.resource === 'concurrencypolicies' && e.objectRef.subresource === 'status' && e.verb === 'patch');
    const resyncs = Math.ceil((Date.now() - startedAt) / RESYNC_MS);
    console.log(`policy status writes: ${statusWrites.length} over ${resyncs} resync periods`);
    expect(statusWrites.length).toBeGreaterThanOrEqual(4);
    // About 8 distinct states were reached (not ready, ready, generation 2, count changes, a new policy), plus
    // lastAuditTime once per resync: a handful of writes, not one per pod (56 pods, ~80 report writes).
    expect(statusWrites.length).toBeLessThanOrEqual(12 + resyncs);
    expect(new Set(statusWrites.map((e) => e.user.username))).toEqual(new Set([CONTROLLER_USER]));
    const errors = logLines.filter((l) => l.level >= 50);
    expect(errors).toEqual([]);
  });
});
