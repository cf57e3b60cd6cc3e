// src/manager — `concurrency-guard manager`, what the chart runs: the webhook on every replica and the
// leader-elected controller in one process, sharing one API client, one metrics registry and one set
// of informers (policies, namespaces, LimitRanges), so a replica holds each cache once. May import
// src/api, src/kube, src/runtime, src/webhook and src/controllers.
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createClientFor, type Informer, type KubeObject } from '../kube/index.ts';
import type { Logger } from '../runtime/index.ts';
import { runController, type RunControllerOptions } from '../controllers/index.ts';
import { createWebhookInformers, runWebhook, type RunWebhookOptions } from '../webhook/index.ts';

type Shared = 'log' | 'registry' | 'client' | 'informers' | 'metricsPort' | 'healthPort' | 'kubeconfig' | 'context';

export interface RunManagerOptions {
  namespace: string;
  podName?: string;
  podUid?: string;
  kubeconfig?: string;
  context?: string;
  /** The webhook's plain-HTTP ports serve the whole process's /metrics and probes. */
  metricsPort: number;
  healthPort: number;
  log: Logger;
  webhook: Omit<RunWebhookOptions, Shared | 'namespace' | 'podName' | 'podUid'>;
  controller: Omit<RunControllerOptions, Shared | 'namespace' | 'podName'>;
}

/** Runs both until `signal` aborts; the webhook drains while the controller releases its Lease. */
export async function runManager(options: RunManagerOptions, signal: AbortSignal): Promise<void> {
  const { log } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const client = await createClientFor(options, 'concurrency-guard-manager');
  const informers = createWebhookInformers(client, registry, log);
  const shared = Object.values(informers) as Informer<KubeObject>[];
  for (const informer of shared) informer.start();
  // One part failing takes the other down with it, so the pod restarts whole instead of half-serving.
  const failed = new AbortController();
  const stop = AbortSignal.any([signal, failed.signal]);
  const guard = async (name: string, work: Promise<void>): Promise<void> => {
    try {
      await work;
    } catch (error) {
      log.error({ err: error, part: name }, `${name} failed; stopping the manager`);
      failed.abort();
      throw error;
    }
  };
  try {
    await Promise.all([
      guard('webhook', runWebhook({
        ...options.webhook,
        // With certificates from the controller, every replica serves the Secret the leader writes; with
        // cert-manager, that Secret is mounted at certDir.
        ...(options.controller.certificates === 'controller' ? { certSecret: options.controller.certSecret } : {}),
        namespace: options.namespace,
        ...(options.podName ? { podName: options.podName } : {}),
        ...(options.podUid ? { podUid: options.podUid } : {}),
        metricsPort: options.metricsPort, healthPort: options.healthPort,
        log, registry, client, informers,
      }, stop)),
      guard('controller', runController({
        ...options.controller,
        namespace: options.namespace,
        ...(options.podName ? { podName: options.podName } : {}),
        log, registry, client, informers,
      }, stop)),
    ]);
  } finally {
    await Promise.all(shared.map((informer) => informer.stop()));
    client.close();
  }
}
