// Issue 6 through the real API server and kube-controller-manager, with a VWC whose failurePolicy is Fail
// (a dead webhook fails these tests instead of passing them). Every "allowed" is paired with a denial in
// the same run, so an allowed case can never pass because nothing was enforced.
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVED_GENERATIONS_ANNOTATION, renderValidatingWebhookConfiguration, runWebhook, webhookLeaseName, type WebhookRuntime } from '../../src/webhook/index.ts';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';
import { createTestAuthority } from '../unit/webhook-fixtures.ts';

const OWN = 'concurrency-guard';
const POD_NAME = 'webhook-e2e-0';
const authority = createTestAuthority('admission-e2e-ca');

let cluster: Cluster;
let runtime: WebhookRuntime;
const stop = new AbortController();
let running: Promise<void>;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(OWN);
  const certDir = join(cluster.controlPlane.workDir, 'webhook-tls');
  mkdirSync(certDir);
  const pair = authority.issue('concurrency-guard-webhook');
  writeFileSync(join(certDir, 'tls.crt'), pair.certPem);
  writeFileSync(join(certDir, 'tls.key'), pair.keyPem);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const listening = Promise.withResolvers<WebhookRuntime>();
  running = runWebhook({
    namespace: OWN, podName: POD_NAME, port: 0, certDir, metricsPort: 0, healthPort: 0, host: '127.0.0.1',
    kubeconfig: cluster.kubeconfigPath, failurePolicy: 'Fail', drainDelayMs: 100, log: pino({ level: 'info' }, sink),
    onListening: (r) => listening.resolve(r),
  }, stop.signal);
  running.catch((error: unknown) => listening.reject(error));
  runtime = await listening.promise;
  await waitUntil('webhook ready (certificate loaded, caches synced)', () => runtime.readiness().ready, 60_000);
  const vwc = renderValidatingWebhookConfiguration({
    namespace: OWN, url: `https://127.0.0.1:${runtime.port}`, caBundlePem: authority.certPem, failurePolicy: 'Fail',
  });
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(vwc) });
  // Policies select namespaces by label, so each case opts its namespaces in.
  await applyPolicy(policy('e2e-deny', 'Deny', 'deny'), 'e2e-deny');
  await applyPolicy(policy('e2e-warn', 'Warn', 'warn'), 'e2e-warn');
});

afterAll(async () => {
  stop.abort();
  await running;
  await cluster?.stop();
});

// ---- helpers ----

function policy(name: string, enforcement: 'Deny' | 'Warn', label: string): string {
  return `apiVersion: concurrencyguard.io/v1alpha1
kind: ConcurrencyPolicy
metadata: {name: ${name}}
spec:
  match: {namespaceSelector: {matchLabels: {e2e-policy: ${label}}}}
  enforcement: ${enforcement}
  gomaxprocs: {maxOverCPULimit: 0}
`;
}

interface Lease { metadata: { annotations?: Record<string, string> }; spec: { holderIdentity: string; renewTime: string } }

async function servedGenerations(): Promise<Record<string, number>> {
  const lease = await cluster.getJson<Lease>(['lease', webhookLeaseName(POD_NAME), '-n', OWN]);
  return JSON.parse(lease.metadata.annotations?.[SERVED_GENERATIONS_ANNOTATION] ?? '{}') as Record<string, number>;
}

/** Applies a policy and waits until this replica's Lease says it serves that generation. */
async function applyPolicy(yaml: string, name: string): Promise<void> {
  await cluster.apply(yaml);
  const { metadata } = await cluster.getJson<{ metadata: { generation: number } }>(['concurrencypolicy', name]);
  await waitUntil(`the webhook Lease to announce ${name} generation ${metadata.generation}`,
    async () => (await servedGenerations())[name] === metadata.generation, 30_000, 200);
}

function deployment(name: string, namespace: string, gomaxprocs: string, cpu: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  replicas: 2
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: server
          image: registry.invalid/server:1
          env: [{name: GOMAXPROCS, value: "${gomaxprocs}"}]
          resources: {limits: {cpu: "${cpu}"}, requests: {cpu: "${cpu}"}}
`;
}

function pod(name: string, namespace: string, gomaxprocs: string, cpu: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  automountServiceAccountToken: false
  containers:
    - name: app
      image: registry.invalid/app:1
      env: [{name: GOMAXPROCS, value: "${gomaxprocs}"}]
      resources: {limits: {cpu: "${cpu}"}, requests: {cpu: "${cpu}"}}
`;
}

/** kubectl apply (client-side, as people run it) and its full output. */
async function kubectlApply(yaml: string): Promise<{ code: number; output: string }> {
  const result = await cluster.kubectl(['apply', '-f', '-'], { input: yaml, allowFailure: true });
  return { code: result.code, output: `${result.stderr}${result.stdout}` };
}

function reviewLines(filter: (line: Record<string, unknown>) => boolean): Record<string, unknown>[] {
  return logLines.filter((line) => line['msg'] === 'review' && filter(line));
}

// ---- the cases ----

describe('Deny and Warn through kubectl', () => {
  beforeAll(async () => {
    await cluster.createNamespace('deny-ns', { 'e2e-policy': 'deny' });
    await cluster.createNamespace('warn-ns', { 'e2e-policy': 'warn' });
  });

  it('denies GOMAXPROCS=16 with limits.cpu 2, naming container, value, limit and fix; the fixed manifest succeeds', async () => {
    const denied = await kubectlApply(deployment('api', 'deny-ns', '16', '2'));
    console.log(`kubectl apply (Deny):\n${denied.output}`);
    expect(denied.code).not.toBe(0);
    expect(denied.output).toContain('admission webhook "validate.concurrencyguard.io" denied the request');
    expect(denied.output).toContain('server');
    expect(denied.output).toContain('16');
    expect(denied.output).toMatch(/\b2\b/);
    expect(denied.output).toMatch(/GOMAXPROCS/);
    expect(denied.output.toLowerCase()).toMatch(/set|remove|use|lower/);
    expect((await cluster.kubectl(['get', 'deployment', 'api', '-n', 'deny-ns'], { allowFailure: true })).code).not.toBe(0);

    const fixed = await kubectlApply(deployment('api', 'deny-ns', '2', '2'));
    expect(fixed.code).toBe(0);
    expect(fixed.output).toContain('deployment.apps/api created');
  });

  it('under Warn the same manifest succeeds and kubectl prints the warning', async () => {
    const warned = await kubectlApply(deployment('api', 'warn-ns', '16', '2'));
    console.log(`kubectl apply (Warn):\n${warned.output}`);
    expect(warned.code).toBe(0);
    expect(warned.output).toMatch(/Warning: .*GOMAXPROCS|Warning: gomaxprocs/i);
    expect(warned.output).toContain('deployment.apps/api created');
    // Paired: the same manifest under Deny in this run is refused.
    expect((await kubectlApply(deployment('api2', 'deny-ns', '16', '2'))).code).not.toBe(0);
  });

  it('on UPDATE only new violations are denied', async () => {
    // The Warn namespace's violating Deployment moves under Deny: changing something else is allowed…
    await cluster.kubectl(['label', 'namespace', 'warn-ns', 'e2e-policy=deny', '--overwrite']);
    await waitUntil('the namespace label to reach the webhook', async () =>
      (await kubectlApply(pod('probe', 'warn-ns', '16', '2'))).code !== 0, 30_000, 200);
    const unrelated = await cluster.kubectl(['scale', 'deployment', 'api', '-n', 'warn-ns', '--replicas=3'], { allowFailure: true });
    expect(unrelated.code).toBe(0);
    const annotate = await cluster.kubectl(['patch', 'deployment', 'api', '-n', 'warn-ns', '--type=merge', '-p', '{"spec":{"template":{"metadata":{"annotations":{"touched":"yes"}}}}}'], { allowFailure: true });
    expect(annotate.code).toBe(0);
    // …a new violation is not.
    const worse = await cluster.kubectl(['set', 'env', 'deployment/api', '-n', 'warn-ns', '-c', 'server', 'GOMAXPROCS=32', '--overwrite'], { allowFailure: true });
    const sidecar = worse.code !== 0 ? worse : await cluster.kubectl(['patch', 'deployment', 'api', '-n', 'warn-ns', '--type=json', '-p',
      '[{"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"sidecar","image":"registry.invalid/s:1","env":[{"name":"GOMAXPROCS","value":"8"}],"resources":{"limits":{"cpu":"1"}}}}]'], { allowFailure: true });
    expect(sidecar.code).not.toBe(0);
    expect(`${sidecar.stderr}`).toContain('denied the request');
  });
});

describe('children of admitted workloads', () => {
  it('rollout restart of a Deployment from before the Deny policy creates the new ReplicaSet and Pods, with warnings', async () => {
    await cluster.createNamespace('legacy');
    expect((await kubectlApply(deployment('old', 'legacy', '16', '2'))).code).toBe(0);
    await waitUntil('2 pods of the old Deployment', async () =>
      (await cluster.getJson<{ items: unknown[] }>(['pods', '-n', 'legacy', '-l', 'app=old'])).items.length === 2, 60_000);
    await cluster.kubectl(['label', 'namespace', 'legacy', 'e2e-policy=deny', '--overwrite']);
    await waitUntil('the Deny policy to cover legacy', async () => (await kubectlApply(pod('probe', 'legacy', '16', '2'))).code !== 0, 30_000, 200);

    interface Item { metadata: { name: string; ownerReferences?: { kind: string; name: string }[] } }
    const original = (await cluster.getJson<{ items: Item[] }>(['replicasets', '-n', 'legacy', '-l', 'app=old'])).items.map((r) => r.metadata.name);
    expect(original).toHaveLength(1);
    const restart = await cluster.kubectl(['rollout', 'restart', 'deployment/old', '-n', 'legacy'], { allowFailure: true });
    expect(restart.code).toBe(0);
    let newReplicaSet = '';
    await waitUntil('the new ReplicaSet and its pods, made by the controller-manager', async () => {
      const sets = await cluster.getJson<{ items: Item[] }>(['replicasets', '-n', 'legacy', '-l', 'app=old']);
      newReplicaSet = sets.items.map((r) => r.metadata.name).find((name) => !original.includes(name)) ?? '';
      if (!newReplicaSet) return false;
      const pods = await cluster.getJson<{ items: Item[] }>(['pods', '-n', 'legacy', '-l', 'app=old']);
      // maxSurge 1 and old pods that never become Ready (no kubelet): the rollout makes one new pod.
      return pods.items.some((p) => p.metadata.ownerReferences?.[0]?.name === newReplicaSet);
    }, 90_000, 500);

    // What the webhook said to the controller-manager's creates: allowed, with warnings.
    // (The controller-manager runs as admin here; its creates are the ones with an owner: ReplicaSets and
    // their pods. Our probe pods are bare and were denied.)
    const replicaSetCreates = reviewLines((l) => l['ns'] === 'legacy' && l['kind'] === 'apps/ReplicaSet' && l['op'] === 'CREATE');
    expect(replicaSetCreates.at(-1)).toMatchObject({ allowed: true });
    expect(Number(replicaSetCreates.at(-1)!['warnings'])).toBeGreaterThan(0);
    const podCreates = reviewLines((l) => l['ns'] === 'legacy' && l['kind'] === '/Pod' && l['op'] === 'CREATE' && l['owner'] === 'ReplicaSet');
    expect(podCreates.length).toBeGreaterThanOrEqual(3); // 2 before the restart, 1 after
    for (const line of podCreates) expect(line).toMatchObject({ allowed: true });
    expect(Number(podCreates.at(-1)!['warnings'])).toBeGreaterThan(0);

    // Paired: a new Deployment with the same template in the same namespace is denied.
    expect((await kubectlApply(deployment('new', 'legacy', '16', '2'))).code).not.toBe(0);
  });
});

describe('pods: kubectl debug, resize, excluded namespaces', () => {
  beforeAll(async () => {
    await cluster.createNamespace('pods-ns');
    // A violating pod from before the policy covered its namespace.
    expect((await kubectlApply(pod('violator', 'pods-ns', '16', '2'))).code).toBe(0);
    expect((await kubectlApply(pod('resizable', 'pods-ns', '2', '2'))).code).toBe(0);
    await cluster.kubectl(['label', 'namespace', 'pods-ns', 'e2e-policy=deny', '--overwrite']);
    await waitUntil('the Deny policy to cover pods-ns', async () => (await kubectlApply(pod('probe', 'pods-ns', '16', '2'))).code !== 0, 30_000, 200);
  });

  it('kubectl debug adds an ephemeral container to a violating pod; a new violating pod is denied', async () => {
    const debug = await cluster.kubectl(['debug', 'violator', '-n', 'pods-ns', '--image=registry.invalid/busybox:1', '-c', 'debugger', '--', 'sleep', '60'], { allowFailure: true });
    expect(debug.code).toBe(0);
    const violator = await cluster.getJson<{ spec: { ephemeralContainers?: { name: string }[] } }>(['pod', 'violator', '-n', 'pods-ns']);
    expect(violator.spec.ephemeralContainers?.map((c) => c.name)).toEqual(['debugger']);
    expect((await kubectlApply(pod('violator-2', 'pods-ns', '16', '2'))).code).not.toBe(0);
  });

  it('a resize lowering limits.cpu under a literal GOMAXPROCS is denied; one raising it is allowed', async () => {
    const resize = (cpu: string) => cluster.kubectl(['patch', 'pod', 'resizable', '-n', 'pods-ns', '--subresource', 'resize', '--type', 'merge', '-p',
      JSON.stringify({ spec: { containers: [{ name: 'app', resources: { limits: { cpu }, requests: { cpu } } }] } })], { allowFailure: true });
    const lowered = await resize('1');
    console.log(`resize to 1 CPU:\n${lowered.stderr}`);
    expect(lowered.code).not.toBe(0);
    expect(lowered.stderr).toContain('denied the request');
    expect(lowered.stderr).toContain('GOMAXPROCS');
    const raised = await resize('3');
    expect(raised.code).toBe(0);
    const after = await cluster.getJson<{ spec: { containers: { resources: { limits: { cpu: string } } }[] } }>(['pod', 'resizable', '-n', 'pods-ns']);
    expect(after.spec.containers[0]!.resources.limits.cpu).toBe('3');
  });

  it('kube-system and our own namespace are never blocked, even when a Deny policy selects them', async () => {
    await cluster.kubectl(['label', 'namespace', 'kube-system', OWN, 'e2e-policy=deny', '--overwrite']);
    expect((await kubectlApply(pod('system-violator', 'kube-system', '16', '2'))).code).toBe(0);
    expect((await kubectlApply(pod('own-violator', OWN, '16', '2'))).code).toBe(0);
    expect((await kubectlApply(deployment('own-deploy', OWN, '16', '2'))).code).toBe(0);
    // Paired: the same pod in a selected namespace is denied in this run.
    expect((await kubectlApply(pod('system-violator', 'pods-ns', '16', '2'))).code).not.toBe(0);
  });
});

describe('the Lease of this replica', () => {
  it('lists the generation of every policy it serves and follows a policy change', async () => {
    const before = await servedGenerations();
    expect(before['e2e-deny']).toBe(1);
    await applyPolicy(policy('e2e-deny', 'Deny', 'deny').replace('maxOverCPULimit: 0', 'maxOverCPULimit: 1'), 'e2e-deny');
    expect((await servedGenerations())['e2e-deny']).toBe(2);
    const lease = await cluster.getJson<Lease>(['lease', webhookLeaseName(POD_NAME), '-n', OWN]);
    expect(lease.spec.holderIdentity).toBe(POD_NAME);
    // Written by the webhook's own field manager (the audit log is the judge of who wrote it).
    const writes = cluster.auditEvents((e) => e.objectRef?.resource === 'leases' && e.objectRef.name === webhookLeaseName(POD_NAME) && e.verb === 'patch');
    expect(writes.length).toBeGreaterThan(0);
  });
});

describe('the serving certificate from a Secret', () => {
  it('is read through an informer on that one Secret and hot-reloaded when the Secret changes', async () => {
    const secretYaml = (pair: { certPem: string; keyPem: string }): string => JSON.stringify({
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: { name: 'webhook-serving', namespace: OWN },
      data: { 'tls.crt': Buffer.from(pair.certPem).toString('base64'), 'tls.key': Buffer.from(pair.keyPem).toString('base64') },
    });
    const first = authority.issue('from-secret-1');
    await cluster.kubectl(['apply', '-f', '-'], { input: secretYaml(first) });
    const secondStop = new AbortController();
    const listening = Promise.withResolvers<WebhookRuntime>();
    const second = runWebhook({
      namespace: OWN, port: 0, certDir: '/nonexistent', certSecret: 'webhook-serving', metricsPort: 0, healthPort: 0,
      host: '127.0.0.1', kubeconfig: cluster.kubeconfigPath, drainDelayMs: 0, certificatePollIntervalMs: 100,
      log: pino({ level: 'warn' }), onListening: (r) => listening.resolve(r),
    }, secondStop.signal);
    second.catch((error: unknown) => listening.reject(error));
    const fromSecret = await listening.promise;
    try {
      expect(await servedSerial(fromSecret.port)).toBe(new X509Certificate(first.certPem).serialNumber);
      const next = authority.issue('from-secret-2');
      await cluster.kubectl(['apply', '-f', '-'], { input: secretYaml(next) });
      const nextSerial = new X509Certificate(next.certPem).serialNumber;
      await waitUntil('the rotated Secret to be served', async () => (await servedSerial(fromSecret.port)) === nextSerial, 30_000, 200);
    } finally {
      secondStop.abort();
      await second;
    }
  });
});

function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: authority.certPem }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', reject);
  });
}
