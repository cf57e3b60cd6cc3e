// src/webhook — the validating admission webhook: the fastify HTTPS server and its wire rules (server.ts,
// review.ts), the admission decisions around the policy engine (admission.ts, engine.ts), the informer
// caches they read (caches.ts), the certificate hot reload (certificate.ts), the process life with drain
// and probes (runtime.ts), the per-replica Lease (lease.ts), and the VWC it is registered with
// (configuration.ts). May import src/api, src/policy, src/kube and src/runtime only (DESIGN.md layers).
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ConcurrencyPolicy } from '../api/index.ts';
import {
  CONCURRENCY_POLICIES, Informer, LIMIT_RANGES, NAMESPACES, SECRETS, createClientFor,
  type KubeClient, type KubeObject,
} from '../kube/index.ts';
import { createLogger, whenAborted, type Logger } from '../runtime/index.ts';
import { createAdmit } from './admission.ts';
import { AdmissionCaches, type LimitRangeObject, type NamespaceObject } from './caches.ts';
import { directorySource, secretSource, type CertificateSource, type TlsSecretLike } from './certificate.ts';
import { excludedNamespaces, HANDLED_KIND_KEYS } from './configuration.ts';
import { admissionCompiler, engineEvaluate } from './engine.ts';
import { ServedGenerationsLease } from './lease.ts';
import { BatchedLineWriter } from '../runtime/index.ts';
import { WebhookMetrics } from './metrics.ts';
import { WebhookRuntime } from './runtime.ts';
import type { FailurePolicy } from './server.ts';

export { createAdmit, denialMessage, shortWarning, type Denial, type Evaluate, type EvaluationInput, type PolicyEvaluation } from './admission.ts';
export { AdmissionCaches } from './caches.ts';
export { CertificateWatcher, directorySource, secretSource, validateServingCertificate, type CertificatePair, type ServingCertificate } from './certificate.ts';
export {
  DEFAULT_CONFIGURATION_NAME, HANDLED_KIND_KEYS, REGISTRATIONS, WEBHOOK_NAME, excludedNamespaces,
  renderValidatingWebhookConfiguration, type WebhookConfigurationOptions,
} from './configuration.ts';
export { admissionCompiler, engineEvaluate, type EngineState } from './engine.ts';
export { SERVED_GENERATIONS_ANNOTATION, ServedGenerationsLease, WEBHOOK_LEASE_LABEL, WEBHOOK_LEASE_PREFIX, webhookLeaseName } from './lease.ts';
export { BatchedLineWriter } from '../runtime/index.ts';
export { WEBHOOK_PATH, WebhookMetrics } from './metrics.ts';
export { parseAdmissionReview, type AdmissionRequest, type AdmissionResponse } from './review.ts';
export { WebhookRuntime, type WebhookRuntimeOptions } from './runtime.ts';
export { buildWebhookServer, type AdmissionDecision, type Admit, type FailurePolicy } from './server.ts';

/** What `concurrency-guard webhook` (and `manager`) pass in; the first block mirrors the CLI's flags. */
export interface RunWebhookOptions {
  /** The operator's own namespace: excluded, and where the Lease (and certificate Secret) live. */
  namespace: string;
  /** This replica's pod name: names its Lease. Without it no Lease is written (local runs). */
  podName?: string;
  /** HTTPS port (9443 in the chart; 0 picks a free one). */
  port: number;
  /** Directory with tls.crt and tls.key, polled for changes. Ignored when certSecret is given. */
  certDir: string;
  metricsPort: number;
  healthPort: number;
  kubeconfig?: string;
  context?: string;

  /** Read the serving certificate from this kubernetes.io/tls Secret (in `namespace`) instead of certDir. */
  certSecret?: string;
  /** The pod's uid (downward API): the Lease is then owned by, and deleted with, the pod. */
  podUid?: string;
  /** Must match the VWC: the answer given when evaluation cannot finish follows it. Default Ignore. */
  failurePolicy?: FailurePolicy;
  /** The VWC's timeoutSeconds; default 3. */
  timeoutSeconds?: number;
  /** Time between failing readiness and closing on shutdown; default 5 s (keep the pod's terminationGracePeriodSeconds above it). */
  drainDelayMs?: number;
  certificatePollIntervalMs?: number;
  host?: string;
  /**
   * Default: JSON lines on stderr through a BatchedLineWriter (one line per review). A logger passed in
   * should write through one too: a synchronous stderr destination costs a syscall per review.
   */
  log?: Logger;
  /** Default: a new Registry with Node's default metrics. */
  registry?: Registry;
  /** Default: built from kubeconfig/context, else in-cluster. */
  client?: KubeClient;
  /** Informers already running in this process (manager shares them with the controller). */
  informers?: WebhookInformers;
  /** Called once the webhook listens (tests read the ports from it). */
  onListening?: (runtime: WebhookRuntime) => void;
}

export interface WebhookInformers {
  policies: Informer<ConcurrencyPolicy>;
  namespaces: Informer<NamespaceObject & KubeObject>;
  limitRanges: Informer<LimitRangeObject & KubeObject>;
}

/** The three informers admission reads; not started. */
export function createWebhookInformers(client: KubeClient, registry?: Registry, log?: Logger): WebhookInformers {
  const common = { client, ...(registry ? { registry } : {}), ...(log ? { logger: log } : {}) };
  return {
    policies: new Informer<ConcurrencyPolicy>({ ...common, resource: CONCURRENCY_POLICIES, name: 'concurrencypolicies' }),
    namespaces: new Informer<NamespaceObject & KubeObject>({ ...common, resource: NAMESPACES, name: 'namespaces' }),
    limitRanges: new Informer<LimitRangeObject & KubeObject>({ ...common, resource: LIMIT_RANGES, name: 'limitranges' }),
  };
}

/**
 * Runs the webhook until `signal` aborts, then drains (readiness fails, the server keeps answering for
 * drainDelayMs, in-flight reviews finish) and stops informers and the Lease. Resolves when all is closed.
 */
export async function runWebhook(options: RunWebhookOptions, signal: AbortSignal): Promise<void> {
  // One line per review: batched asynchronous writes to stderr (src/runtime/batched-line-writer.ts); flushed on shutdown.
  const ownDestination = options.log ? undefined : new BatchedLineWriter({ fd: 2 });
  const log = options.log ?? createLogger({ name: 'concurrency-guard-webhook', ...(ownDestination ? { destination: ownDestination } : {}) });
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const client = options.client ?? await createClientFor(options, 'concurrency-guard-webhook');
  const ownsInformers = !options.informers;
  const informers = options.informers ?? createWebhookInformers(client, registry, log);
  let lease: ServedGenerationsLease | undefined;
  const excluded = excludedNamespaces(options.namespace);
  const caches = new AdmissionCaches({
    policies: informers.policies, namespaces: informers.namespaces, limitRanges: informers.limitRanges,
    compile: admissionCompiler(excluded),
    onPoliciesChanged: () => lease?.changed(),
    logger: log,
  });

  let secretInformer: Informer<TlsSecretLike & KubeObject> | undefined;
  let certificateSource: CertificateSource;
  if (options.certSecret) {
    // One Secret, watched by name: RBAC can then grant get/list/watch on that name only.
    secretInformer = new Informer<TlsSecretLike & KubeObject>({
      client, resource: SECRETS, name: 'webhook-certificate', namespace: options.namespace,
      fieldSelector: `metadata.name=${options.certSecret}`, registry, logger: log,
    });
    const name = options.certSecret;
    certificateSource = secretSource(() => secretInformer?.get(options.namespace, name));
  } else {
    certificateSource = directorySource(options.certDir);
  }

  const metrics = new WebhookMetrics(registry, HANDLED_KIND_KEYS);
  const admit = createAdmit({
    evaluate: (input) => engineEvaluate(caches, input),
    excludedNamespaces: excluded,
  });

  if (ownsInformers) for (const informer of Object.values(informers) as Informer<KubeObject>[]) informer.start();
  secretInformer?.start();
  const stopInformers = async (): Promise<void> => {
    await secretInformer?.stop();
    if (ownsInformers) await Promise.all((Object.values(informers) as Informer<KubeObject>[]).map((i) => i.stop()));
  };

  let runtime: WebhookRuntime;
  try {
    runtime = await WebhookRuntime.start({
      admit,
      certificateSource,
      ...(options.certificatePollIntervalMs ? { certificatePollIntervalMs: options.certificatePollIntervalMs } : {}),
      cachesSynced: () => caches.synced(),
      logger: log, registry, metrics,
      ...(options.host ? { host: options.host } : {}),
      port: options.port,
      metricsPort: options.metricsPort,
      healthPort: options.healthPort,
      ...(options.failurePolicy ? { failurePolicy: options.failurePolicy } : {}),
      ...(options.timeoutSeconds ? { timeoutSeconds: options.timeoutSeconds } : {}),
      ...(options.drainDelayMs !== undefined ? { drainDelayMs: options.drainDelayMs } : {}),
    }, signal);
  } catch (error) {
    await stopInformers();
    caches.dispose();
    if (signal.aborted) return;
    throw error;
  }
  log.info({ port: runtime.port, metricsPort: runtime.metricsPort, healthPort: runtime.healthPort }, 'webhook listening');
  options.onListening?.(runtime);

  if (options.podName) {
    lease = new ServedGenerationsLease({
      client, namespace: options.namespace, podName: options.podName,
      ...(options.podUid ? { podUid: options.podUid } : {}),
      servedGenerations: () => caches.servedGenerations,
      logger: log,
    });
    // Announce only what is really served: after the policy cache has listed.
    void caches.whenSynced().then(() => { if (!signal.aborted) lease?.start(); });
  }

  await whenAborted(signal);
  log.info('webhook shutting down');
  try {
    await runtime.drainAndClose();
  } finally {
    await lease?.stop();
    await stopInformers();
    caches.dispose();
    if (!options.client) client.close();
    await new Promise<void>((resolve) => log.flush(() => resolve()));
  }
}
