// Pod-create latency through a real kube-apiserver, three ways in one run: no admission webhook or
// policy, our webhook (failurePolicy Fail, the real admission with the bench's 20 policies, in its own
// process), and a ValidatingAdmissionPolicy doing the GOMAXPROCS literal rule in CEL. Creates are
// sequential on one keep-alive connection, so each figure is the latency one `kubectl apply` sees.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
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
  log(`pod create through a real kube-apiserver (${options.creates} sequential creates per mode, modes alternating in rounds of 100, after ${WARMUP_CREATES} warm-up each)`);
  const cluster = await startCluster();
  const webhookChild = spawn(process.execPath, [join(import.meta.dirname, 'webhook.ts'), 'serve', 'ours', ...writeServing(cluster, options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const childLines = createInterface({ input: webhookChild.stdout })[Symbol.asyncIterator]();
    const childLine = async (): Promise<string> => {
      const { value, done } = await childLines.next();
      if (done) throw new Error('webhook process exited');
      return value;
    };
    const ownLatency = async (): Promise<{ count: number; sum: number }> => {
      webhookChild.stdin.write('latency\n');
      return JSON.parse(await childLine()) as { count: number; sum: number };
    };
    const { port } = JSON.parse(await childLine()) as { port: number };
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
    // The machine is shared: phases alternate in rounds so that load drift hits all three alike.
    const samples: Record<'none' | 'webhook' | 'vap', number[]> = { none: [], webhook: [], vap: [] };
    const measure = async (into: number[], count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const result = await create(cleanPod(`p${serial++}`));
        if (result.status !== 201) throw new Error(`create answered ${result.status}: ${result.body.slice(0, 300)}`);
        into.push(result.ms);
      }
      await cluster.kubectl(['delete', 'pods', '--all', '-n', NAMESPACE, '--wait=false']);
    };
    const dryRunStatus = async (pod: Record<string, unknown>): Promise<number> => {
      const res = await pool.request({
        path: `/api/v1/namespaces/${NAMESPACE}/pods?dryRun=All`, method: 'POST',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify(pod),
      });
      await res.body.dump();
      return res.statusCode;
    };
    const vwc = JSON.stringify(renderValidatingWebhookConfiguration({
      name: 'bench-concurrency-guard', namespace: 'concurrency-guard', url: `https://127.0.0.1:${port}`,
      caBundlePem: options.authority.certPem, failurePolicy: 'Fail',
    }));
    const only = async (mode: 'none' | 'webhook' | 'vap'): Promise<void> => {
      if (mode !== 'webhook') await cluster.kubectl(['delete', 'validatingwebhookconfiguration', 'bench-concurrency-guard', '--ignore-not-found']);
      if (mode !== 'vap') await cluster.kubectl(['delete', 'validatingadmissionpolicybinding', 'bench-gomaxprocs-literal', '--ignore-not-found']);
      if (mode === 'webhook') await cluster.kubectl(['apply', '-f', '-'], { input: vwc });
      if (mode === 'vap') await cluster.kubectl(['apply', '-f', '-'], { input: VAP });
      // Each mode is proven active (or, for none, inactive) before it is measured.
      await waitUntil(`admission mode ${mode}`, async () => {
        const status = await dryRunStatus(violatingPod(`probe-${serial++}`));
        return mode === 'none' ? status === 201 : status >= 400;
      }, 30_000, 200);
    };
    for (const mode of ['none', 'webhook', 'vap'] as const) {
      await only(mode);
      await measure([], WARMUP_CREATES);
    }
    const durationsBefore = admissionDurations(await apiServerMetrics(cluster));
    const ownBefore = await ownLatency();
    const rounds = Math.max(1, Math.round(options.creates / 100));
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['none', 'webhook', 'vap'] as const) {
        await only(mode);
        await measure(samples[mode], Math.ceil(options.creates / rounds));
      }
    }
    const summarise = (name: string, times: number[]): Phase => {
      times.sort((a, b) => a - b);
      return { name, count: times.length, p50: pct(times, 0.5), p90: pct(times, 0.9), p99: pct(times, 0.99), max: times.at(-1) ?? Number.NaN };
    };
    const durationsAfter = admissionDurations(await apiServerMetrics(cluster));
    const ownAfter = await ownLatency();
    const ownMeanMs = ((ownAfter.sum - ownBefore.sum) / Math.max(1, ownAfter.count - ownBefore.count)) * 1000;
    const meanMs = (key: 'webhook' | 'vap'): number =>
      ((durationsAfter[key].sum - durationsBefore[key].sum) / Math.max(1, durationsAfter[key].count - durationsBefore[key].count)) * 1000;
    const none = summarise('no admission', samples.none);
    const webhook = summarise('concurrency-guard webhook', samples.webhook);
    const vap = summarise('ValidatingAdmissionPolicy (CEL)', samples.vap);
    await pool.close();

    const ms = (v: number): string => v.toFixed(2).padStart(7);
    log(`${'mode'.padEnd(34)} ${'p50 ms'.padStart(7)} ${'p90 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'max ms'.padStart(7)}`);
    for (const p of [none, webhook, vap]) log(`${p.name.padEnd(34)} ${ms(p.p50)} ${ms(p.p90)} ${ms(p.p99)} ${ms(p.max)}`);
    const addedP99 = webhook.p99 - none.p99;
    const overVap = webhook.p99 - vap.p99;
    log(`\nthe API server's own timing (apiserver_admission_webhook_admission_duration_seconds / apiserver_validating_admission_policy_check_duration_seconds, mean per create): webhook call ${meanMs('webhook').toFixed(2)} ms (of which in our handler, routing to answer: ${ownMeanMs.toFixed(2)} ms), VAP check ${meanMs('vap').toFixed(2)} ms`);
    log(`webhook added p99 over no admission: ${addedP99.toFixed(2)} ms (target ≤ 3 ms) ${addedP99 <= 3 ? 'MET' : 'MISSED'}; added p50 ${(webhook.p50 - none.p50).toFixed(2)} ms`);
    log(`webhook p99 over the ValidatingAdmissionPolicy: ${overVap.toFixed(2)} ms (target ≤ 2 ms) ${overVap <= 2 ? 'MET' : 'MISSED'}; VAP added p99 ${(vap.p99 - none.p99).toFixed(2)} ms`);
  } finally {
    webhookChild.stdin.end();
    await new Promise((resolve) => webhookChild.once('exit', resolve));
    await cluster.stop();
  }
}

function apiServerMetrics(cluster: Cluster): Promise<string> {
  const { ca, admin, apiServerPort } = cluster.controlPlane;
  return new Promise((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port: apiServerPort, path: '/metrics', ca: ca.certPem, cert: admin.certPem, key: admin.keyPem }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve(text));
    }).on('error', reject).end();
  });
}

/** Sum and count of the API server's admission timings for our webhook (CREATE) and for the bench VAP. */
function admissionDurations(metrics: string): Record<'webhook' | 'vap', { sum: number; count: number }> {
  const total = (prefix: string, must: string): number => metrics.split('\n')
    .filter((line) => line.startsWith(prefix) && line.includes(must))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
  return {
    webhook: {
      sum: total('apiserver_admission_webhook_admission_duration_seconds_sum{', 'name="validate.concurrencyguard.io",operation="CREATE"'),
      count: total('apiserver_admission_webhook_admission_duration_seconds_count{', 'name="validate.concurrencyguard.io",operation="CREATE"'),
    },
    vap: {
      sum: total('apiserver_validating_admission_policy_check_duration_seconds_sum{', 'policy="bench-gomaxprocs-literal"'),
      count: total('apiserver_validating_admission_policy_check_duration_seconds_count{', 'policy="bench-gomaxprocs-literal"'),
    },
  };
}

function writeServing(cluster: Cluster, options: ApiServerBenchOptions): [string, string] {
  const certFile = join(cluster.controlPlane.workDir, 'bench-webhook.crt');
  const keyFile = join(cluster.controlPlane.workDir, 'bench-webhook.key');
  writeFileSync(certFile, options.serving.certPem);
  writeFileSync(keyFile, options.serving.keyPem);
  return [certFile, keyFile];
}
