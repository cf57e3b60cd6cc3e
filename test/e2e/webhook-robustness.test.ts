// The webhook under abuse, wired to a real API server (informers, Lease) with failurePolicy Fail:
// bad input gets 400s and never a crash; 100,000 generated reviews cause no 5xx and no memory growth; a
// certificate rotated under load is presented on new connections while neither our client nor the API
// server sees an error (apiserver_admission_webhook_rejection_count{error_type="calling_webhook_error"}
// stays put, read from the API server's own /metrics).
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWebhook, renderValidatingWebhookConfiguration, type WebhookRuntime } from '../../src/webhook/index.ts';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { admissionReview, createTestAuthority, podObject, type ContainerSpec } from '../unit/webhook-fixtures.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const OWN_NAMESPACE = 'concurrency-guard';
const NAMESPACE = 'robust';
const authority = createTestAuthority('robustness-ca');

let cluster: Cluster;
let runtime: WebhookRuntime;
let certDir: string;
const stop = new AbortController();
const registry = new Registry();
let running: Promise<void>;

function writePair(pair: { certPem: string; keyPem: string }): void {
  writeFileSync(join(certDir, 'tls.crt.tmp'), pair.certPem);
  writeFileSync(join(certDir, 'tls.key.tmp'), pair.keyPem);
  renameSync(join(certDir, 'tls.key.tmp'), join(certDir, 'tls.key'));
  renameSync(join(certDir, 'tls.crt.tmp'), join(certDir, 'tls.crt'));
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(OWN_NAMESPACE);
  await cluster.createNamespace(NAMESPACE, { 'e2e-robustness': 'deny' });
  certDir = join(cluster.controlPlane.workDir, 'webhook-tls');
  mkdirSync(certDir);
  writePair(authority.issue('webhook-1'));
  const listening = Promise.withResolvers<WebhookRuntime>();
  running = runWebhook({
    namespace: OWN_NAMESPACE, podName: 'webhook-robust-0', port: 0, certDir, metricsPort: 0, healthPort: 0,
    host: '127.0.0.1', kubeconfig: cluster.kubeconfigPath, failurePolicy: 'Fail', drainDelayMs: 100,
    certificatePollIntervalMs: 200, log: pino({ level: 'error' }), registry,
    onListening: (r) => listening.resolve(r),
  }, stop.signal);
  running.catch((error: unknown) => listening.reject(error));
  runtime = await listening.promise;
  await waitUntil('webhook ready', () => runtime.readiness().ready, 60_000);
  await cluster.apply(`apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: robustness-deny}
spec:
  match: {namespaceSelector: {matchLabels: {e2e-robustness: deny}}}
  enforcement: Deny
  gomaxprocs: {maxOverCPULimit: 0}
`);
  const vwc = renderValidatingWebhookConfiguration({
    name: 'robustness', namespace: OWN_NAMESPACE, url: `https://127.0.0.1:${runtime.port}`,
    caBundlePem: authority.certPem, failurePolicy: 'Fail',
  });
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(vwc) });
  // The policy is served once a violating pod is denied through the API server.
  await waitUntil('the policy to be enforced', async () =>
    (await cluster.kubectl(['apply', '-f', '-'], { input: violatingPodYaml('probe'), allowFailure: true })).code !== 0, 60_000, 250);
});

afterAll(async () => {
  stop.abort();
  await running;
  await cluster?.stop();
});

function violatingPodYaml(name: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NAMESPACE}}
spec:
  automountServiceAccountToken: false
  containers: [{name: app, image: registry.invalid/app:1, env: [{name: GOMAXPROCS, value: "16"}], resources: {limits: {cpu: "2"}}}]
`;
}

interface Posted { status: number; body: string }

function post(body: string | Buffer, path = '/validate'): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: runtime.port, path, method: 'POST', ca: authority.certPem,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const violating = (): Record<string, unknown> => podObject({
  name: 'v', namespace: NAMESPACE,
  containers: [{ name: 'app', env: [{ name: 'GOMAXPROCS', value: '16' }], resources: { limits: { cpu: '2' } } }],
});

describe('bad input', () => {
  const good = JSON.stringify(admissionReview({ namespace: NAMESPACE, object: violating() }));

  it.each([
    ['truncated JSON', good.slice(0, good.length / 2)],
    ['apiVersion admission.k8s.io/v1beta1', good.replace('admission.k8s.io/v1', 'admission.k8s.io/v1beta1')],
    ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })],
    ['no request.uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} })],
  ])('%s → 400 with a message', async (_what, body) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ code: 400, message: expect.any(String) as string });
  });

  it('5 MiB: malformed → 400, well-formed → a decision (denied, as the same pod small)', async () => {
    const big = violating();
    (big['metadata'] as { annotations: Record<string, string> }).annotations['padding'] = 'p'.repeat(5 * 1024 * 1024);
    const body = JSON.stringify(admissionReview({ uid: 'big-1', namespace: NAMESPACE, object: big }));
    expect(body.length).toBeGreaterThan(5 * 1024 * 1024);
    const decided = await post(body);
    expect(decided.status).toBe(200);
    expect(JSON.parse(decided.body)).toMatchObject({ response: { uid: 'big-1', allowed: false } });
    expect((await post(body.slice(0, -1))).status).toBe(400);
  });

  it('a well-formed review of a kind we do not handle is allowed; the same envelope with a pod is denied', async () => {
    const configMap = await post(JSON.stringify(admissionReview({
      uid: 'cm-1', namespace: NAMESPACE, kind: { group: '', version: 'v1', kind: 'ConfigMap' },
      resource: { group: '', version: 'v1', resource: 'configmaps' }, object: { metadata: { name: 'c' }, data: { GOMAXPROCS: '16' } },
    })));
    expect(JSON.parse(configMap.body)).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'cm-1', allowed: true } });
    const pod = await post(JSON.stringify(admissionReview({ uid: 'pod-1', namespace: NAMESPACE, object: violating() })));
    expect(JSON.parse(pod.body)).toMatchObject({ response: { uid: 'pod-1', allowed: false } });
  });
});

// ---- generated reviews ----

const cpuQuantity = fc.oneof(
  fc.constantFrom('100m', '500m', '1', '1500m', '2', '4', '0', '1.5', '2000m', '1e3', '0.001', '64', '+1', '-1', 'abc', ''),
  fc.integer({ min: 1, max: 64 }).map(String),
);
const gomaxprocsValue = fc.oneof(fc.constantFrom('0', '-1', 'abc', '', '1', '2', '16', '64', '2.5', ' 4', '$(CPUS)', '$$(X)'), fc.integer({ min: 1, max: 128 }).map(String));
const envEntry = fc.oneof(
  gomaxprocsValue.map((value) => ({ name: 'GOMAXPROCS', value })),
  fc.constantFrom('1', '1m', '1000m', '0', undefined).map((divisor) => ({
    name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', ...(divisor === undefined ? {} : { divisor }) } },
  })),
  fc.constantFrom('containermaxprocs=0', 'gctrace=1').map((value) => ({ name: 'GODEBUG', value })),
  fc.record({ name: fc.string({ maxLength: 12 }), value: fc.string({ maxLength: 20 }) }),
);
const container: fc.Arbitrary<ContainerSpec> = fc.record({
  name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
  env: fc.array(envEntry, { maxLength: 4 }),
  resources: fc.record({ limits: fc.option(fc.record({ cpu: cpuQuantity }), { nil: undefined }), requests: fc.option(fc.record({ cpu: cpuQuantity }), { nil: undefined }) }, { requiredKeys: [] }),
  command: fc.option(fc.constantFrom(['sh', '-c', 'ulimit -n 65536 && exec app'], ['sh', '-c', 'ulimit -Hn 1048576; exec app'], ['app']), { nil: undefined }),
}, { requiredKeys: ['name'] });

const WORKLOADS = [
  { group: 'apps', kind: 'Deployment', resource: 'deployments' },
  { group: 'apps', kind: 'StatefulSet', resource: 'statefulsets' },
  { group: 'apps', kind: 'DaemonSet', resource: 'daemonsets' },
  { group: 'apps', kind: 'ReplicaSet', resource: 'replicasets' },
  { group: 'batch', kind: 'Job', resource: 'jobs' },
  { group: 'batch', kind: 'CronJob', resource: 'cronjobs' },
];

function wrap(kind: string, pod: Record<string, unknown>): Record<string, unknown> {
  const template = { metadata: { labels: { app: 'gen' } }, spec: pod['spec'] };
  const metadata = { name: 'gen', namespace: NAMESPACE };
  if (kind === 'CronJob') return { kind, metadata, spec: { schedule: '* * * * *', jobTemplate: { spec: { template } } } };
  return { kind, metadata, spec: { selector: { matchLabels: { app: 'gen' } }, template } };
}

type Generated = { body: string; expect: 200 | 400 };

const generatedReview: fc.Arbitrary<Generated> = fc.record({
  containers: fc.array(container, { minLength: 1, maxLength: 4 }),
  oldContainers: fc.array(container, { minLength: 1, maxLength: 3 }),
  target: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: fc.constantFrom(...WORKLOADS) }),
  operation: fc.constantFrom('CREATE', 'UPDATE'),
  subResource: fc.constantFrom(undefined, undefined, undefined, 'resize', 'ephemeralcontainers', 'status'),
  namespace: fc.constantFrom(NAMESPACE, NAMESPACE, 'kube-system', OWN_NAMESPACE, 'elsewhere'),
  owned: fc.boolean(),
  damage: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'truncate', 'apiVersion', 'no-uid', 'not-object'),
}).map(({ containers, oldContainers, target, operation, subResource, namespace, owned, damage }) => {
  const pod = podObject({ namespace, containers, ...(owned ? { ownerKind: 'ReplicaSet' } : {}) });
  const oldPod = podObject({ namespace, containers: oldContainers });
  const review = target
    ? admissionReview({
      kind: { group: target.group, version: 'v1', kind: target.kind }, resource: { group: target.group, version: 'v1', resource: target.resource },
      operation, namespace, object: wrap(target.kind, pod), oldObject: operation === 'UPDATE' ? wrap(target.kind, oldPod) : null,
    })
    : admissionReview({
      operation: subResource ? 'UPDATE' : operation, ...(subResource ? { subResource } : {}), namespace,
      object: pod, oldObject: subResource || operation === 'UPDATE' ? oldPod : null,
    });
  const body = JSON.stringify(review);
  switch (damage) {
    case 'truncate': return { body: body.slice(0, Math.floor(body.length * 0.7)), expect: 400 as const };
    case 'apiVersion': return { body: JSON.stringify({ ...review, apiVersion: 'v1' }), expect: 400 as const };
    case 'no-uid': return { body: JSON.stringify({ ...review, request: { ...(review['request'] as object), uid: undefined } }), expect: 400 as const };
    case 'not-object': return { body: JSON.stringify([review]), expect: 400 as const };
    default: return { body, expect: 200 as const };
  }
});

describe('100,000 generated reviews', () => {
  it('answer every one (200 for well-formed, 400 for damaged), never a 5xx, without memory growth', async () => {
    const TOTAL = 100_000;
    const WARMUP = 20_000;
    const samples = fc.sample(generatedReview, { numRuns: 2_000, seed: 20261127 });
    const pool = new Pool(`https://127.0.0.1:${runtime.port}`, { connections: 16, connect: { ca: authority.certPem } });
    const statusCounts = new Map<number, number>();
    let mismatches = 0;
    let allowed = 0;
    let denied = 0;
    let heapAfterWarmup = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const index = next++;
        if (index === WARMUP) {
          gc();
          heapAfterWarmup = process.memoryUsage().heapUsed;
        }
        const sample = samples[index % samples.length]!;
        const res = await pool.request({ path: '/validate', method: 'POST', body: sample.body, headers: { 'content-type': 'application/json' } });
        const text = await res.body.text();
        statusCounts.set(res.statusCode, (statusCounts.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode !== sample.expect) mismatches++;
        if (res.statusCode === 200) {
          if ((JSON.parse(text) as { response: { allowed: boolean } }).response.allowed) allowed++;
          else denied++;
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await pool.close();
    gc();
    const heapAtEnd = process.memoryUsage().heapUsed;
    const counts = Object.fromEntries(statusCounts);
    console.log(`100k reviews: status ${JSON.stringify(counts)}, allowed ${allowed}, denied ${denied}, heap after warm-up ${(heapAfterWarmup / 2 ** 20).toFixed(1)} MiB → end ${(heapAtEnd / 2 ** 20).toFixed(1)} MiB`);
    expect([...statusCounts.keys()].every((code) => code === 200 || code === 400)).toBe(true);
    expect(mismatches).toBe(0);
    expect(denied).toBeGreaterThan(1_000);
    expect(allowed).toBeGreaterThan(1_000);
    // 80,000 reviews after warm-up: a leak of even 100 bytes each would show as 8 MiB.
    expect(heapAtEnd - heapAfterWarmup).toBeLessThan(8 * 2 ** 20);
    // Still serving normally.
    expect(runtime.readiness().ready).toBe(true);
  }, 600_000);
});

// ---- certificate rotation under load ----

function apiServerMetrics(): Promise<string> {
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

function callingWebhookErrors(metrics: string): number {
  return metrics.split('\n')
    .filter((line) => line.startsWith('apiserver_admission_webhook_rejection_count{') && line.includes('error_type="calling_webhook_error"'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function tlsConnections(): Promise<number> {
  const text = await registry.metrics();
  return Number(/^concurrency_guard_webhook_tls_connections_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

let probes = 0;
function presentedSerial(): Promise<string> {
  probes++;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: runtime.port, ca: authority.certPem }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('certificate rotation under load', () => {
  it('new connections get the new serial; no client error; calling_webhook_error stays put', async () => {
    const before = callingWebhookErrors(await apiServerMetrics());
    const first = await presentedSerial();
    expect(first).toBe(runtime.certificate?.serialNumber);

    const { ca, admin } = cluster.controlPlane;
    // Load through the API server: dry-run pod creates (admission runs, nothing is stored), half of them
    // violating, from 4 connections; a fresh connection to the webhook now and then by us as well.
    const pool = new Pool(cluster.controlPlane.apiServerUrl, { connections: 4, connect: { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem } });
    const outcomes = new Map<string, number>();
    let stopLoad = false;
    let sent = 0;
    const loadWorker = async (): Promise<void> => {
      while (!stopLoad) {
        const bad = sent++ % 2 === 0;
        const pod = podObject({
          name: `rot-${sent}`, namespace: NAMESPACE,
          containers: [{ name: 'app', env: [{ name: 'GOMAXPROCS', value: bad ? '16' : '2' }], resources: { limits: { cpu: '2' } } }],
        });
        const metadata = pod['metadata'] as Record<string, unknown>;
        delete metadata['uid']; delete metadata['managedFields']; delete metadata['creationTimestamp']; delete pod['status'];
        const spec = pod['spec'] as Record<string, unknown>;
        spec['volumes'] = []; spec['automountServiceAccountToken'] = false;
        for (const c of spec['containers'] as Record<string, unknown>[]) c['volumeMounts'] = [];
        try {
          const res = await pool.request({ path: `/api/v1/namespaces/${NAMESPACE}/pods?dryRun=All`, method: 'POST', body: JSON.stringify(pod), headers: { 'content-type': 'application/json' } });
          const text = await res.body.text();
          const key = `${bad ? 'violating' : 'clean'}:${res.statusCode}${res.statusCode === 403 && !text.includes('GOMAXPROCS') ? ':other' : ''}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        } catch (error) {
          outcomes.set(`error:${String(error)}`, (outcomes.get(`error:${String(error)}`) ?? 0) + 1);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 4 }, loadWorker));
    await sleep(2_000);
    const connectionsBefore = await tlsConnections();
    const probesBefore = probes;
    const next = authority.issue('webhook-2');
    const nextSerial = new X509Certificate(next.certPem).serialNumber;
    writePair(next);
    await waitUntil('the new certificate to be served', async () => (await presentedSerial()) === nextSerial, 10_000, 100);
    await sleep(3_000);
    // The API server's connections opened under the old certificate were closed after their next answer
    // and re-dialled: new handshakes beyond our own probes, each verifying the new certificate.
    const connectionsAfter = await tlsConnections();
    stopLoad = true;
    await load;
    await pool.close();
    const after = callingWebhookErrors(await apiServerMetrics());
    console.log(`rotation under load: ${JSON.stringify(Object.fromEntries(outcomes))}; calling_webhook_error ${before} → ${after}`);
    expect(runtime.certificate?.serialNumber).toBe(nextSerial);
    expect(Object.fromEntries(outcomes)).toEqual({
      'violating:403': expect.any(Number) as number,
      'clean:201': expect.any(Number) as number,
    });
    expect((outcomes.get('violating:403') ?? 0) + (outcomes.get('clean:201') ?? 0)).toBeGreaterThan(100);
    expect(after).toBe(before);
    expect(connectionsAfter - connectionsBefore - (probes - probesBefore)).toBeGreaterThan(0);
  });
});
