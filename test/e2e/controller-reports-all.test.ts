// --reports=all through a real API server: every matched pod gets a report, compliant ones included,
// and keeps it however quiet; a pod no policy matches gets none; once a pod leaves the match, its quiet
// report expires after --report-ttl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { ConcurrencyReport } from '../../src/api/index.ts';
import { runController, SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL } from '../../src/controllers/index.ts';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';

const OWN = 'cg-all-system';
const NS = 'reports-all';
const POLICY = 'e2e-reports-all';
const TTL_MS = 4_000;

let cluster: Cluster;
const stop = new AbortController();
let running: Promise<void>;

function pod(name: string, cpuLimit: string, gomaxprocs: string, labels: Record<string, string>): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}, labels: ${JSON.stringify(labels)}}
spec:
  nodeName: node-a
  containers: [{name: app, image: registry.k8s.io/pause:3.10, resources: {limits: {cpu: "${cpuLimit}"}}, env: [{name: GOMAXPROCS, value: "${gomaxprocs}"}]}]
`;
}

function policy(selector: string): string {
  return `apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: ${POLICY}}
spec:
  match: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${NS}}}, podSelector: ${selector}}
  gomaxprocs: {maxOverCPULimit: 0}
`;
}

async function reports(): Promise<Map<string, ConcurrencyReport>> {
  const list = await cluster.getJson<{ items: ConcurrencyReport[] }>(['ccr', '-n', NS]);
  return new Map(list.items.map((r) => [r.metadata.name ?? '', r]));
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(OWN);
  await cluster.createNamespace(NS);
  await cluster.kubectl(['apply', '-f', '-'], {
    input: [
      pod('compliant-a', '2', '2', { audited: 'yes' }),
      pod('compliant-b', '2', '2', { audited: 'yes', leaving: 'soon' }),
      pod('violating', '1', '4', { audited: 'yes' }),
      pod('unmatched', '1', '4', { audited: 'no' }),
    ].join('---\n'),
  });
  await cluster.apply(policy('{matchLabels: {audited: "yes"}}'));
  await cluster.apply(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: concurrency-guard-webhook-e2e-all
  namespace: ${OWN}
  labels: {${WEBHOOK_LEASE_LABEL}: "true"}
  annotations: {${SERVED_GENERATIONS_ANNOTATION}: '{"${POLICY}": 1, "other": 1}'}
spec: {holderIdentity: e2e, leaseDurationSeconds: 3600, renewTime: "${new Date().toISOString().replace('Z', '000Z')}"}
`);
  running = runController({
    namespace: OWN, leaderElect: false, reportTtl: TTL_MS, resync: 3600_000, reports: 'all',
    certificates: 'cert-manager', webhookConfiguration: 'unused', webhookService: 'unused', certSecret: 'unused',
    kubeconfig: cluster.kubeconfigPath, statusCoalesceMs: 200, log: pino({ level: process.env['CG_TEST_VERBOSE'] ? 'debug' : 'silent' }),
  }, stop.signal);
});

afterAll(async () => {
  stop.abort();
  await running;
  await cluster?.stop();
});

describe('--reports=all', () => {
  it('gives every matched pod a report, compliant ones included, and none to an unmatched pod', async () => {
    await waitUntil('three reports', async () => (await reports()).size === 3, 60_000, 250);
    const byName = await reports();
    expect([...byName.keys()].sort()).toEqual(['compliant-a', 'compliant-b', 'violating']);
    expect(byName.get('compliant-a')?.status?.conditions?.find((c) => c.type === 'PolicyCompliant')).toMatchObject({ status: 'True', reason: 'NoFindings', message: 'No finding from 1 matching policy' });
    expect(byName.get('violating')?.status?.audit?.findings?.map((f) => f.rule)).toEqual(['gomaxprocs/above-cpu-limit']);
  });

  it('keeps matched pods\' quiet reports past the TTL; a pod that leaves the match loses its report after it', async () => {
    await new Promise((resolve) => setTimeout(resolve, TTL_MS + 3_000));
    expect([...(await reports()).keys()].sort()).toEqual(['compliant-a', 'compliant-b', 'violating']);
    await cluster.apply(policy('{matchLabels: {audited: "yes"}, matchExpressions: [{key: leaving, operator: DoesNotExist}]}'));
    await waitUntil('compliant-b says no policy matches', async () =>
      (await reports()).get('compliant-b')?.status?.conditions?.find((c) => c.type === 'PolicyCompliant')?.reason === 'NoMatchingPolicy', 30_000, 250);
    await waitUntil('compliant-b\'s report expired', async () => !(await reports()).has('compliant-b'), TTL_MS + 30_000, 250);
    expect([...(await reports()).keys()].sort()).toEqual(['compliant-a', 'violating']);
  });
});
