// src/controllers — the leader-elected controller (DESIGN.md "Controller"): ConcurrencyPolicy status
// (policy-status.ts, Ready from the webhook replicas' Leases in policy-readiness.ts, Events in events.ts),
// the background audit in a worker thread that owns pods, evaluation and report writes (audit/), reports'
// lifecycle (audit/report-status.ts), and the webhook's CA and serving certificate with the VWC's
// caBundle (certificates/). May import src/api, src/policy, src/kube and src/runtime only: never
// src/webhook (whose Lease format is repeated in policy-readiness.ts) nor src/up.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { excludedNamespaces, type ConcurrencyPolicy } from '../api/index.ts';
import {
  CONCURRENCY_POLICIES, Informer, LEASES, LIMIT_RANGES, LeaderElector, NAMESPACES, createClientFor, describeError, EventRecorder,
  type KubeClient, type KubeObject,
} from '../kube/index.ts';
import { answerScrape, closeServer, createLogger, isLogLevel, listen, whenAborted, type Logger } from '../runtime/index.ts';
import type { LimitRangeObject } from './audit/engine.ts';
import type { AuditSettings, PassFigures } from './audit/protocol.ts';
import type { ReportsMode } from './audit/report-status.ts';
import { AuditSupervisor } from './audit/supervisor.ts';
import { CertificateController } from './certificates/controller.ts';
import type { CertificateSettings } from './certificates/rotation.ts';
import { WEBHOOK_LEASE_LABEL, type WebhookLease } from './policy-readiness.ts';
import { PolicyStatusController } from './policy-status.ts';

export { desiredPolicyStatus, PolicyStatusController, type PolicyAuditStats } from './policy-status.ts';
export { readyCondition, replicaStates, SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL } from './policy-readiness.ts';
export { planCertificates, desiredBundle, ROTATE_ANNOTATION, ROTATED_ANNOTATION, SECRET_KEYS, type CertificateSettings } from './certificates/rotation.ts';
export type { PassFigures, AuditSettings } from './audit/protocol.ts';
export type { ReportsMode } from './audit/report-status.ts';

export const CONTROLLER_LEASE_NAME = 'concurrency-guard-controller';

/** What `concurrency-guard controller` (and `manager`) pass in; the first block mirrors the CLI's flags. */
export interface RunControllerOptions {
  /** The operator's own namespace: excluded from the audit; holds the Leases and the certificate Secret. */
  namespace: string;
  podName?: string;
  /** false: act as leader at once (one replica only). */
  leaderElect: boolean;
  /** Milliseconds a report with no finding, at level OK, is kept (CLI --report-ttl, default 10 min). */
  reportTtl: number;
  /** Milliseconds between full re-audits (CLI --resync, default 1 h). */
  resync: number;
  /** --reports: a report only for pods with a finding (or that the agent made one for), or for every matched pod. */
  reports?: ReportsMode;
  certificates: 'controller' | 'cert-manager';
  webhookConfiguration: string;
  webhookService: string;
  certSecret: string;
  /** Plain-HTTP /metrics; undefined: not served (manager serves one registry on the webhook's port). */
  metricsPort?: number;
  /** Plain-HTTP /healthz and /readyz; undefined: not served. */
  healthPort?: number;
  kubeconfig?: string;
  context?: string;

  // ---- for embedding (manager) and tests ----
  log?: Logger;
  registry?: Registry;
  client?: KubeClient;
  /** Informers already running in this process (manager shares the webhook's). */
  informers?: ControllerInformers;
  host?: string;
  leaderElection?: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number; leaseName?: string };
  /** At most one status write per policy per this long (default 5 s). */
  statusCoalesceMs?: number;
  /** Report writes per second across all pods (default 20, burst 100). */
  reportWritesPerSecond?: number;
  reportWriteBurst?: number;
  auditConcurrency?: number;
  /** The audit worker's V8 young generation in MiB (default 8: keeps peak RSS near 300 MiB at 10k pods). */
  auditYoungGenerationMb?: number;
  certificate?: Partial<CertificateSettings> & { checkIntervalMs?: number };
  /** Module URL exporting createEngine() for the audit worker (default: src/policy). */
  engineModule?: string;
  /** Called with figures of each completed audit pass (bench, tests). */
  onAuditPass?: (figures: PassFigures) => void;
  onAuditSynced?: (pods: number, listMs: number) => void;
  /** Called once health/metrics listen (tests read the ports). */
  onListening?: (ports: { healthPort?: number; metricsPort?: number }) => void;
}

export interface ControllerInformers {
  policies: Informer<ConcurrencyPolicy>;
  namespaces: Informer<KubeObject>;
  limitRanges: Informer<LimitRangeObject & KubeObject>;
}

const DAY_MS = 24 * 3600 * 1000;

export function defaultCertificateSettings(options: Pick<RunControllerOptions, 'namespace' | 'webhookService'>): CertificateSettings {
  const service = options.webhookService;
  const ns = options.namespace;
  return {
    caValidityMs: 5 * 365 * DAY_MS,
    leafValidityMs: 365 * DAY_MS,
    renewBeforeFraction: 1 / 3,
    bundlePropagationMs: 60_000,
    previousCaRetentionMs: 3600_000,
    dnsNames: [`${service}.${ns}.svc`, service, `${service}.${ns}`, `${service}.${ns}.svc.cluster.local`],
    ipAddresses: [],
  };
}

/**
 * Runs the controller until `signal` aborts: informers on every replica (a new leader starts warm), the
 * leader-only work while this replica leads, then a clean stop that releases the Lease.
 */
export async function runController(options: RunControllerOptions, signal: AbortSignal): Promise<void> {
  const log = options.log ?? createLogger({ name: 'concurrency-guard-controller' });
  const registry = options.registry ?? new Registry();
  if (!options.registry) collectDefaultMetrics({ register: registry });
  const client = options.client ?? await createClientFor(options, 'concurrency-guard-controller');
  const identity = `${options.podName ?? hostname()}-${randomBytes(3).toString('hex')}`;
  const common = { client, registry, logger: log };
  const ownsInformers = !options.informers;
  const informers: ControllerInformers = options.informers ?? {
    policies: new Informer<ConcurrencyPolicy>({ ...common, resource: CONCURRENCY_POLICIES, name: 'concurrencypolicies' }),
    namespaces: new Informer<KubeObject>({ ...common, resource: NAMESPACES, name: 'namespaces' }),
    limitRanges: new Informer<LimitRangeObject & KubeObject>({ ...common, resource: LIMIT_RANGES, name: 'limitranges' }),
  };
  const leases = new Informer<WebhookLease>({
    ...common, resource: LEASES, name: 'webhook-leases', namespace: options.namespace, labelSelector: `${WEBHOOK_LEASE_LABEL}=true`,
  });
  const allInformers = [...(Object.values(informers) as Informer<KubeObject>[]), leases as Informer<KubeObject>];
  if (ownsInformers) for (const informer of Object.values(informers) as Informer<KubeObject>[]) informer.start();
  leases.start();
  const synced = (): boolean => allInformers.every((i) => i.hasSynced);

  const servers: Server[] = [];
  const ports: { healthPort?: number; metricsPort?: number } = {};
  if (options.healthPort !== undefined) {
    const health = createServer((req, res) => {
      const ok = req.url === '/healthz' || req.url === '/livez' || (req.url === '/readyz' && synced());
      res.writeHead(ok ? 200 : req.url === '/readyz' ? 503 : 404, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
    });
    servers.push(health);
    ports.healthPort = await listen(health, options.healthPort, options.host);
  }
  if (options.metricsPort !== undefined) {
    const metrics = createServer((req, res) => {
      if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
      void answerScrape(registry, res);
    });
    servers.push(metrics);
    ports.metricsPort = await listen(metrics, options.metricsPort, options.host);
  }
  options.onListening?.(ports);

  const settings: AuditSettings = {
    reportsMode: options.reports ?? 'problems',
    reportTtlMs: options.reportTtl,
    resyncMs: options.resync,
    excludedNamespaces: excludedNamespaces(options.namespace),
    reportWritesPerSecond: options.reportWritesPerSecond ?? 20,
    reportWriteBurst: options.reportWriteBurst ?? 100,
    concurrency: options.auditConcurrency ?? 4,
  };
  const certificateSettings = { ...defaultCertificateSettings(options), ...options.certificate };
  const events = new EventRecorder({ client, controller: 'concurrencyguard.io/controller', action: 'Reconcile', instance: identity, logger: log });

  /** Everything only the leader does, for one term; returns when the term (or the process) ends. */
  const lead = async (term: AbortSignal): Promise<void> => {
    const done = AbortSignal.any([term, signal]);
    await Promise.race([Promise.all(allInformers.map((i) => i.whenSynced)), whenAborted(done)]);
    if (done.aborted) return;
    log.info({ identity }, 'leading: policy status, audit and certificates started');
    const status = new PolicyStatusController({
      client, policies: informers.policies, leases, ownNamespace: options.namespace, events, registry, logger: log,
      ...(options.statusCoalesceMs !== undefined ? { coalesceMs: options.statusCoalesceMs } : {}),
    });
    const audit = new AuditSupervisor({
      connection: client.connection, settings, policies: informers.policies, namespaces: informers.namespaces,
      limitRanges: informers.limitRanges, logger: log,
      logLevel: isLogLevel(log.level) ? log.level : 'info',
      ...(options.engineModule ? { engineModule: options.engineModule } : {}),
      ...(options.auditYoungGenerationMb ? { youngGenerationMb: options.auditYoungGenerationMb } : {}),
      onStats: (stats) => status.setAuditStats(stats),
      ...(options.onAuditPass ? { onPass: options.onAuditPass } : {}),
      ...(options.onAuditSynced ? { onSynced: options.onAuditSynced } : {}),
    });
    const certificates = options.certificates === 'controller'
      ? new CertificateController({
        client, namespace: options.namespace, secretName: options.certSecret, webhookConfiguration: options.webhookConfiguration,
        settings: certificateSettings, checkIntervalMs: options.certificate?.checkIntervalMs ?? 60_000, events, registry, logger: log,
      })
      : undefined;
    status.start();
    audit.start();
    certificates?.start();
    await whenAborted(done);
    log.info({ identity, reason: describeError(term.aborted ? term.reason : signal.reason) }, 'leader work stopping');
    await Promise.all([status.stop(), audit.stop({ immediate: term.aborted && !signal.aborted }), certificates?.stop()]);
  };

  const aborted = whenAborted(signal).then(() => undefined);
  try {
    if (!options.leaderElect) {
      await lead(signal);
    } else {
      const election = options.leaderElection ?? {};
      const elector = new LeaderElector({
        client, namespace: options.namespace, name: election.leaseName ?? CONTROLLER_LEASE_NAME, identity,
        // The elector's defaults (6 s lease, 4 s renew deadline, 1 s retry) unless told otherwise.
        ...(election.leaseDurationMs !== undefined ? { leaseDurationMs: election.leaseDurationMs } : {}),
        ...(election.renewDeadlineMs !== undefined ? { renewDeadlineMs: election.renewDeadlineMs } : {}),
        ...(election.retryPeriodMs !== undefined ? { retryPeriodMs: election.retryPeriodMs } : {}),
        registry, logger: log,
      });
      // Leader work stops before the Lease is released (run() releases once `signal` aborts).
      const stopElection = new AbortController();
      const electing = elector.run(stopElection.signal);
      while (!signal.aborted) {
        const term = await Promise.race([elector.whenLeading(), aborted]);
        if (!term) break;
        await lead(term);
      }
      stopElection.abort();
      await electing;
    }
  } finally {
    await Promise.all([leases.stop(), ...(ownsInformers ? (Object.values(informers) as Informer<KubeObject>[]).map((i) => i.stop()) : [])]);
    await Promise.all(servers.map(closeServer));
    if (!options.client) client.close();
    log.flush?.();
  }
}
