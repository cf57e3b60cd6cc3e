// The assembled product: `concurrency-guard manager` as a real process (the CLI, as the chart runs it)
// issues its own certificate, fills the VWC's caBundle, serves admission over HTTPS with failurePolicy
// Fail, announces what it serves so a policy turns Ready, and exits cleanly on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freeLoopbackPort } from '../../src/up/index.ts';
import { renderValidatingWebhookConfiguration } from '../../src/webhook/index.ts';
import { startCluster, waitUntil, type Cluster } from '../support/cluster.ts';

const cli = join(import.meta.dirname, '../../src/cli.ts');
const own = 'concurrency-guard';
const vwcName = 'cg-manager-e2e';
let cluster: Cluster;
let manager: ChildProcess;
let managerLog = '';
let healthPort = 0;

function pod(name: string, gomaxprocs: string): string {
  return stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop' },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1', env: [{ name: 'GOMAXPROCS', value: gomaxprocs }], resources: { limits: { cpu: '2' } } }] },
  });
}

async function ready(): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.installCRDs();
  await cluster.createNamespace(own);
  await cluster.createNamespace('shop');
  const port = await freeLoopbackPort();
  healthPort = await freeLoopbackPort();
  await cluster.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify(renderValidatingWebhookConfiguration({
      name: vwcName, namespace: own, url: `https://127.0.0.1:${port}`, failurePolicy: 'Fail', timeoutSeconds: 5,
    })),
  });
  manager = spawn(process.execPath, [cli, 'manager',
    `--kubeconfig=${cluster.kubeconfigPath}`, `--namespace=${own}`, '--pod-name=manager-0',
    `--port=${port}`, '--metrics-port=0', `--health-port=${healthPort}`,
    `--webhook-configuration=${vwcName}`, '--certificate-ip-addresses=127.0.0.1',
    '--failure-policy=Fail', '--timeout-seconds=5',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  manager.stderr?.on('data', (chunk: Buffer) => { managerLog += chunk.toString(); });
  await waitUntil('the manager to be ready (certificate issued, caches synced)', ready, 120_000, 250);
});

afterAll(async () => {
  if (manager && manager.exitCode === null) manager.kill('SIGKILL');
  await cluster?.stop();
});

describe('concurrency-guard manager', () => {
  it('fills the caBundle of the VWC it was given, and touches no other field', async () => {
    const vwc = await cluster.getJson<{ webhooks: { failurePolicy: string; clientConfig: { caBundle?: string } }[] }>(['validatingwebhookconfiguration', vwcName]);
    expect(vwc.webhooks.length).toBeGreaterThan(0);
    for (const webhook of vwc.webhooks) {
      expect(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString()).toContain('BEGIN CERTIFICATE');
      expect(webhook.failurePolicy).toBe('Fail');
    }
  });

  it('turns a Deny policy Ready once its webhook serves the generation, then denies and allows through the API server', async () => {
    await cluster.apply(stringify({
      apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy', metadata: { name: 'manager-e2e-go' },
      spec: { enforcement: 'Deny', match: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } }, gomaxprocs: { maxOverCPULimit: 0 } },
    }));
    await waitUntil('policy Ready=True', async () => {
      const policy = await cluster.getJson<{ status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] } }>(['ccp', 'manager-e2e-go']);
      return policy.status?.observedGeneration === 1 && policy.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
    }, 90_000, 500);

    const denied = await cluster.kubectl(['apply', '-f', '-'], { input: pod('too-many-procs', '16'), allowFailure: true });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('denied the request');
    expect(denied.stderr).toContain('gomaxprocs/');
    expect(denied.stderr).toContain('app');
    expect(denied.stderr).toContain('16');

    const allowed = await cluster.kubectl(['apply', '-f', '-'], { input: pod('right-sized', '2'), allowFailure: true });
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
  });

  it('stops on SIGTERM with exit code 0 within its drain window', async () => {
    const exited = new Promise<number | null>((resolve) => manager.once('exit', (code) => resolve(code)));
    manager.kill('SIGTERM');
    const started = Date.now();
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(managerLog).not.toContain('"level":50');
  });
});
