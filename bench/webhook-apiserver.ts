// Pod-create latency through a real kube-apiserver, three ways in one run: no admission webhook or
// policy, our webhook (failurePolicy Fail, the real admission with the bench's 20 policies, in its own
// process), and a ValidatingAdmissionPolicy doing the GOMAXPROCS literal rule in CEL. Creates are
// sequential on one keep-alive connection, so each figure is the latency one `kubectl apply` sees.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { startCluster, waitUntil, type Cluster } from '../test/support/cluster.ts';
import { podObject, REALISTIC_CONTAINERS, type TestAuthority } from '../test/unit/webhook-fixtures.ts';
import { renderValidatingWebhookConfiguration } from '../src/webhook/configuration.ts';

export interface ApiServerBenchOptions {
  creates: number;
  authority: TestAuthority;
  serving: { certPem: string; keyPem: string };
  log: (line: string) => void;
}

const NAMESPACE = 'bench';
const WARMUP_CREATES = 30;

/** The GOMAXPROCS literal rule: a numeric GOMAXPROCS may not exceed ceil(limits.cpu). */
const VAP = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: bench-gomaxprocs-literal}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
    - expression: >-
        object.spec.containers.all(c, !has(c.env) || !has(c.resources.limits) || !('cpu' in c.resources.limits) ||
        c.env.all(e, e.name != 'GOMAXPROCS' || !has(e.value) || !e.value.matches('^[0-9]+$') ||
        quantity(e.value).isLessThan(quantity(c.resources.limits.cpu).add(quantity('999m')))))
      message: GOMAXPROCS above ceil(limits.cpu)
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: bench-gomaxprocs-literal}
spec:
  policyName: bench-gomaxprocs-literal
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: ${NAMESPACE}}
`;

interface Phase { name: string; p50: number; p90: number; p99: number; max: number; count: number }

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

function violatingPod(name: string): Record<string, unknown> {
  return podObject({ name, namespace: NAMESPACE, containers: [{ name: 'app', env: [{ name: 'GOMAXPROCS', value: '16' }], resources: { limits: { cpu: '2' } } }] });
}

function cleanPod(name: string): Record<string, unknown> {
  const pod = podObject({ name, namespace: NAMESPACE, containers: REALISTIC_CONTAINERS });
  // What a client sends: no server-set fields.
  const metadata = pod['metadata'] as Record<string, unknown>;
  for (const field of ['uid', 'creationTimestamp', 'managedFields']) delete metadata[field];
  delete pod['status'];
  const spec = pod['spec'] as Record<string, unknown>;
  spec['volumes'] = [];
  for (const c of spec['containers'] as Record<string, unknown>[]) c['volumeMounts'] = [];
  spec['automountServiceAccountToken'] = false;
  return pod;
}

export async function runApiServerBench(options: ApiServerBenchOptions): Promise<void> {
  const { log } = options;
  log(`pod create through a real kube-apiserver (${options.creates} sequential creates per phase after ${WARMUP_CREATES} warm-up)`);
  const cluster = await startCluster();
  const webhookChild = spawn(process.execPath, [join(import.meta.dirname, 'webhook.ts'), 'serve', 'ours', ...writeServing(cluster, options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const { port } = JSON.parse(await firstLine(webhookChild.stdout)) as { port: number };
    await cluster.createNamespace(NAMESPACE);
    const { ca, admin } = cluster.controlPlane;
    const pool = new Pool(cluster.controlPlane.apiServerUrl, { connections: 1, connect: { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem } });
    let serial = 0;
    const create = async (pod: Record<string, unknown>): Promise<{ status: number; ms: number; body: string }> => {
      const started = performance.now();
      const res = await pool.request({
        path: `/api/v1/namespaces/${NAMESPACE}/pods`, method: 'POST',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify(pod),
      });
      const body = await res.body.text();
      return { status: res.statusCode, ms: performance.now() - started, body };
    };
    const phase = async (name: string): Promise<Phase> => {
      const times: number[] = [];
      for (let i = 0; i < WARMUP_CREATES + options.creates; i++) {
        const result = await create(cleanPod(`p${serial++}`));
        if (result.status !== 201) throw new Error(`${name}: create answered ${result.status}: ${result.body.slice(0, 300)}`);
        if (i >= WARMUP_CREATES) times.push(result.ms);
      }
      await cluster.kubectl(['delete', 'pods', '--all', '-n', NAMESPACE, '--wait=false']);
      times.sort((a, b) => a - b);
      return { name, count: times.length, p50: pct(times, 0.5), p90: pct(times, 0.9), p99: pct(times, 0.99), max: times.at(-1) ?? Number.NaN };
    };
    const expectDenied = async (what: string): Promise<void> => {
      await waitUntil(`${what} to deny a violating pod`, async () => (await create(violatingPod(`deny-${serial++}`))).status >= 400, 30_000, 200);
    };

    const none = await phase('no admission');

    const vwc = renderValidatingWebhookConfiguration({
      name: 'bench-concurrency-guard', namespace: 'concurrency-guard', url: `https://127.0.0.1:${port}`,
      caBundlePem: options.authority.certPem, failurePolicy: 'Fail',
    });
    await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(vwc) });
    await expectDenied('the webhook');
    const webhook = await phase('concurrency-guard webhook');
    await cluster.kubectl(['delete', 'validatingwebhookconfiguration', 'bench-concurrency-guard']);

    await cluster.kubectl(['apply', '-f', '-'], { input: VAP });
    await expectDenied('the ValidatingAdmissionPolicy');
    const vap = await phase('ValidatingAdmissionPolicy (CEL)');
    await pool.close();

    const ms = (v: number): string => v.toFixed(2).padStart(7);
    log(`${'phase'.padEnd(34)} ${'p50 ms'.padStart(7)} ${'p90 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'max ms'.padStart(7)}`);
    for (const p of [none, webhook, vap]) log(`${p.name.padEnd(34)} ${ms(p.p50)} ${ms(p.p90)} ${ms(p.p99)} ${ms(p.max)}`);
    const addedP99 = webhook.p99 - none.p99;
    const overVap = webhook.p99 - vap.p99;
    log(`\nwebhook added p99 over no admission: ${addedP99.toFixed(2)} ms (target ≤ 3 ms) ${addedP99 <= 3 ? 'MET' : 'MISSED'}; added p50 ${(webhook.p50 - none.p50).toFixed(2)} ms`);
    log(`webhook p99 over the ValidatingAdmissionPolicy: ${overVap.toFixed(2)} ms (target ≤ 2 ms) ${overVap <= 2 ? 'MET' : 'MISSED'}; VAP added p99 ${(vap.p99 - none.p99).toFixed(2)} ms`);
  } finally {
    webhookChild.stdin.end();
    await new Promise((resolve) => webhookChild.once('exit', resolve));
    await cluster.stop();
  }
}

function writeServing(cluster: Cluster, options: ApiServerBenchOptions): [string, string] {
  const certFile = join(cluster.controlPlane.workDir, 'bench-webhook.crt');
  const keyFile = join(cluster.controlPlane.workDir, 'bench-webhook.key');
  writeFileSync(certFile, options.serving.certPem);
  writeFileSync(keyFile, options.serving.keyPem);
  return [certFile, keyFile];
}

async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  for await (const line of createInterface({ input: stream })) return line;
  throw new Error('webhook process exited before answering');
}
