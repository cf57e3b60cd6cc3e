// `concurrency-guard up`: everything on one machine. The embedded control plane with our CRDs, and the
// manager (webhook + controller) in this process, registered with a ValidatingWebhookConfiguration that
// reaches it on loopback; the controller issues its own certificate and fills the caBundle, exactly as
// in a cluster. Prints how to point kubectl at it and what to try.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { whenAborted, type Logger } from '../runtime/index.ts';
import { runManager } from '../manager/index.ts';
import { renderValidatingWebhookConfiguration } from '../webhook/index.ts';
import { ControlPlane, cacheRoot, freeLoopbackPort } from './control-plane/index.ts';

export interface UpOptions {
  /** Where to write the kubeconfig; default <cache>/up/kubeconfig. */
  kubeconfigOut?: string;
  logger: Logger;
  signal: AbortSignal;
}

const repoRoot = resolve(import.meta.dirname, '../..');
const OWN_NAMESPACE = 'concurrency-guard';
const WEBHOOK_CONFIGURATION = 'concurrency-guard';

export async function runEmbeddedUp(options: UpOptions): Promise<void> {
  const { logger, signal } = options;
  const log = (message: string): void => logger.info(message);
  log('starting etcd, kube-apiserver and kube-controller-manager on loopback');
  const plane = await ControlPlane.start({ log });
  const managerStopped = new AbortController();
  let manager: Promise<void> | undefined;
  try {
    const kubeconfig = options.kubeconfigOut ?? join(cacheRoot(), 'up', 'kubeconfig');
    mkdirSync(resolve(kubeconfig, '..'), { recursive: true });
    copyFileSync(plane.kubeconfigPath, kubeconfig);
    const kubectl = (args: string[], input?: string): void => {
      execFileSync(plane.binaries.kubectl, [`--kubeconfig=${kubeconfig}`, ...args], { stdio: ['pipe', 'ignore', 'pipe'], ...(input ? { input } : {}) });
    };
    kubectl(['apply', '--server-side', '--field-manager=concurrency-guard-up', '-f', join(repoRoot, 'crds')]);
    kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', join(repoRoot, 'crds')]);
    kubectl(['create', 'namespace', OWN_NAMESPACE]);
    log('CRDs installed');

    const [port, healthPort, metricsPort] = [await freeLoopbackPort(), await freeLoopbackPort(), await freeLoopbackPort()];
    // Created without a caBundle, as Helm does; the controller fills it in once it has issued the CA.
    kubectl(['apply', '-f', '-'], JSON.stringify(renderValidatingWebhookConfiguration({
      name: WEBHOOK_CONFIGURATION, namespace: OWN_NAMESPACE, url: `https://127.0.0.1:${port}`,
    })));
    manager = runManager({
      namespace: OWN_NAMESPACE, podName: 'up-0', kubeconfig, metricsPort, healthPort, log: logger,
      webhook: { port, certDir: '', host: '127.0.0.1' },
      controller: {
        leaderElect: false, reportTtl: 10 * 60_000, resync: 60 * 60_000, reports: 'problems',
        certificates: 'controller', webhookConfiguration: WEBHOOK_CONFIGURATION,
        webhookService: 'concurrency-guard-webhook', certSecret: 'concurrency-guard-webhook-tls',
        certificate: { ipAddresses: ['127.0.0.1'] }, host: '127.0.0.1',
      },
    }, AbortSignal.any([signal, managerStopped.signal]));
    manager.catch(() => undefined);
    await waitForReady(healthPort, signal);
    if (signal.aborted) return;
    log(`manager serving: webhook https://127.0.0.1:${port}, /metrics http://127.0.0.1:${metricsPort}/metrics`);
    process.stdout.write([
      '',
      `concurrency-guard is up on an embedded control plane at ${plane.apiServerUrl}.`,
      'Point kubectl at it:',
      `  export KUBECONFIG=${kubeconfig}`,
      `  alias kubectl=${plane.binaries.kubectl}`,
      'Try it:',
      `  kubectl apply -f ${join(repoRoot, 'examples/go-services.yaml')}`,
      '  kubectl label namespace default concurrency-guard.io/enabled=true',
      `  kubectl apply -f ${join(repoRoot, 'examples/demo/gomaxprocs-above-limit.yaml')}   # denied: GOMAXPROCS 16 on 2 CPUs`,
      '  kubectl get concurrencypolicies,concurrencyreports -A',
      '',
      'Press Ctrl-C to stop it (its state is discarded).',
      '',
    ].join('\n'));
    await whenAborted(signal);
  } finally {
    managerStopped.abort();
    await manager?.catch((error: unknown) => logger.error({ err: error }, 'manager failed'));
    log('stopping the embedded control plane');
    await plane.stop();
  }
}

async function waitForReady(healthPort: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!signal.aborted && Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  if (!signal.aborted) throw new Error('the manager did not become ready within 120 s');
}
