// `concurrency-guard up`: everything on one machine. For now: the embedded control plane with our CRDs,
// and how to point kubectl at it; later issues add the manager, the agent and a demo workload.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ControlPlane, cacheRoot } from './control-plane/index.ts';

export interface UpOptions {
  /** Where to write the kubeconfig; default <cache>/up/kubeconfig. */
  kubeconfigOut?: string;
  log: (message: string) => void;
  signal: AbortSignal;
}

const repoRoot = resolve(import.meta.dirname, '../..');

export async function runEmbeddedUp(options: UpOptions): Promise<void> {
  const { log, signal } = options;
  log('starting etcd, kube-apiserver and kube-controller-manager on loopback');
  const plane = await ControlPlane.start({ log });
  try {
    const kubeconfig = options.kubeconfigOut ?? join(cacheRoot(), 'up', 'kubeconfig');
    mkdirSync(resolve(kubeconfig, '..'), { recursive: true });
    copyFileSync(plane.kubeconfigPath, kubeconfig);
    execFileSync(plane.binaries.kubectl, [`--kubeconfig=${kubeconfig}`, 'apply', '--server-side',
      '--field-manager=concurrency-guard-up', '-f', join(repoRoot, 'crds')], { stdio: 'ignore' });
    log('CRDs installed');
    process.stdout.write([
      '',
      `The embedded control plane is up at ${plane.apiServerUrl}.`,
      'Point kubectl at it:',
      `  export KUBECONFIG=${kubeconfig}`,
      `  alias kubectl=${plane.binaries.kubectl}`,
      '  kubectl get concurrencypolicies,concurrencyreports -A',
      '',
      'Press Ctrl-C to stop it (its state is discarded).',
      '',
    ].join('\n'));
    if (!signal.aborted) await new Promise<void>((done) => signal.addEventListener('abort', () => done(), { once: true }));
    log('stopping the embedded control plane');
  } finally {
    await plane.stop();
  }
}
