// The webhook's process-level life: the plain-HTTP metrics port, waiting for the first certificate, the
// HTTPS listener, certificate hot reload with setSecureContext, readiness, and the drain on shutdown
// (readiness fails first, the server keeps answering for drainDelayMs so the endpoints controller and the
// API server stop picking this replica, then it closes once in-flight reviews are answered).
import { createServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CertificateWatcher, type CertificateSource, type ServingCertificate } from './certificate.ts';
import type { WebhookMetrics } from './metrics.ts';
import { buildWebhookServer, type Admit, type FailurePolicy, type Readiness, type WebhookServerHandle } from './server.ts';
import { answerScrape, closeServer, listen } from '../runtime/index.ts';

export interface WebhookRuntimeOptions {
  admit: Admit;
  certificateSource: CertificateSource;
  /** How often the certificate source is re-read (hash compared); default 10 s. */
  certificatePollIntervalMs?: number;
  /** True once the policy, namespace and LimitRange caches have listed. */
  cachesSynced: () => boolean;
  logger: Logger;
  registry: Registry;
  metrics: WebhookMetrics;
  host?: string;
  port: number;
  /** Host of the plain-HTTP ports; default 0.0.0.0. */
  metricsHost?: string;
  /** Plain HTTP: /metrics (and /healthz, /readyz when no separate healthPort). */
  metricsPort: number;
  /** Plain HTTP: /healthz and /readyz for the kubelet's probes; default: served on metricsPort only. */
  healthPort?: number;
  failurePolicy?: FailurePolicy;
  timeoutSeconds?: number;
  bodyLimitBytes?: number;
  keepAliveTimeoutMs?: number;
  /** Time between failing readiness and closing the listener; default 5 s. */
  drainDelayMs?: number;
}

export const DEFAULT_CERTIFICATE_POLL_INTERVAL_MS = 10_000;
export const DEFAULT_DRAIN_DELAY_MS = 5_000;

export class WebhookRuntime {
  private readonly options: WebhookRuntimeOptions;
  private readonly watcher: CertificateWatcher;
  private readonly metricsServer: HttpServer;
  private readonly healthServer: HttpServer | undefined;
  private server: WebhookServerHandle | undefined;
  private draining = false;
  private closed: Promise<void> | undefined;
  private firstCertificate: { promise: Promise<ServingCertificate>; resolve: (c: ServingCertificate) => void };

  private constructor(options: WebhookRuntimeOptions) {
    this.options = options;
    const { promise, resolve } = Promise.withResolvers<ServingCertificate>();
    this.firstCertificate = { promise, resolve };
    this.watcher = new CertificateWatcher({
      source: options.certificateSource,
      pollIntervalMs: options.certificatePollIntervalMs ?? DEFAULT_CERTIFICATE_POLL_INTERVAL_MS,
      onCertificate: (certificate) => this.useCertificate(certificate),
      onInvalid: (error) => {
        options.metrics.certificateReloads.inc({ result: 'invalid' });
        options.logger.error({ err: error.message }, 'serving certificate rejected; the previous one stays in use');
      },
    });
    this.metricsServer = createServer((req, res) => void this.servePlain(req.url ?? '/', res, true));
    this.healthServer = options.healthPort === undefined || options.healthPort === options.metricsPort
      ? undefined
      : createServer((req, res) => void this.servePlain(req.url ?? '/', res, false));
    options.metrics.ready.set(0);
  }

  /**
   * Opens the metrics port at once, then waits for a valid certificate (aborting with `signal`) and opens
   * the HTTPS port. Resolves when both listen.
   */
  static async start(options: WebhookRuntimeOptions, signal?: AbortSignal): Promise<WebhookRuntime> {
    const runtime = new WebhookRuntime(options);
    await listen(runtime.metricsServer, options.metricsPort, options.metricsHost);
    if (runtime.healthServer) await listen(runtime.healthServer, options.healthPort ?? 0, options.metricsHost);
    runtime.watcher.start();
    try {
      const certificate = await abortable(runtime.firstCertificate.promise, signal, () => {
        options.logger.info('waiting for the serving certificate');
      });
      runtime.server = buildWebhookServer({
        certificate,
        admit: options.admit,
        logger: options.logger,
        metrics: options.metrics,
        readiness: () => runtime.readiness(),
        ...(options.failurePolicy ? { failurePolicy: options.failurePolicy } : {}),
        ...(options.timeoutSeconds ? { timeoutSeconds: options.timeoutSeconds } : {}),
        ...(options.bodyLimitBytes ? { bodyLimitBytes: options.bodyLimitBytes } : {}),
        ...(options.keepAliveTimeoutMs ? { keepAliveTimeoutMs: options.keepAliveTimeoutMs } : {}),
      });
      await runtime.server.app.listen({ host: options.host ?? '0.0.0.0', port: options.port });
    } catch (error) {
      runtime.watcher.stop();
      await closeServer(runtime.metricsServer);
      if (runtime.healthServer) await closeServer(runtime.healthServer);
      throw error;
    }
    return runtime;
  }

  get port(): number {
    return (this.server?.app.server.address() as AddressInfo | null)?.port ?? 0;
  }

  get metricsPort(): number {
    return (this.metricsServer.address() as AddressInfo | null)?.port ?? 0;
  }

  get healthPort(): number {
    return ((this.healthServer ?? this.metricsServer).address() as AddressInfo | null)?.port ?? 0;
  }

  get certificate(): ServingCertificate | undefined {
    return this.watcher.current;
  }

  /** Re-reads the certificate source now (tests; the timer does it otherwise). */
  pollCertificate(): Promise<void> {
    return this.watcher.poll();
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (!this.watcher.current) reasons.push('no serving certificate yet');
    if (!this.options.cachesSynced()) reasons.push('caches not synced');
    if (this.draining) reasons.push('shutting down');
    const ready = reasons.length === 0;
    this.options.metrics.ready.set(ready ? 1 : 0);
    return { ready, reasons };
  }

  /** Fail readiness, keep serving drainDelayMs, then close after in-flight reviews are answered. */
  drainAndClose(): Promise<void> {
    this.closed ??= this.drain();
    return this.closed;
  }

  private async drain(): Promise<void> {
    const { logger } = this.options;
    this.draining = true;
    this.options.metrics.ready.set(0);
    const delay = this.options.drainDelayMs ?? DEFAULT_DRAIN_DELAY_MS;
    logger.info({ drainDelayMs: delay }, 'draining: readiness now fails, still serving');
    await sleep(delay);
    this.watcher.stop();
    await this.server?.app.close();
    await closeServer(this.metricsServer);
    if (this.healthServer) await closeServer(this.healthServer);
    logger.info('webhook closed');
  }

  private useCertificate(certificate: ServingCertificate): void {
    const { logger, metrics } = this.options;
    metrics.certificateNotAfter.set(certificate.notAfter.getTime() / 1000);
    if (this.server) {
      // New connections get the new certificate; connections opened under the old one are closed after
      // their next answer, so the API server re-dials within a request instead of an idle timeout.
      this.server.setCertificate(certificate);
      metrics.certificateReloads.inc({ result: 'loaded' });
      logger.info({ serial: certificate.serialNumber, notAfter: certificate.notAfter.toISOString() }, 'serving certificate reloaded');
    } else {
      metrics.certificateReloads.inc({ result: 'loaded' });
      logger.info({ serial: certificate.serialNumber, notAfter: certificate.notAfter.toISOString() }, 'serving certificate loaded');
      this.firstCertificate.resolve(certificate);
    }
  }

  private async servePlain(url: string, res: ServerResponse, metrics: boolean): Promise<void> {
    const path = url.split('?')[0];
    try {
      if (metrics && path === '/metrics') {
        await answerScrape(this.options.registry, res);
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else if (path === '/readyz') {
        const readiness = this.readiness();
        res.writeHead(readiness.ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(readiness.ready ? 'ok' : `not ready: ${readiness.reasons.join('; ')}`);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      }
    } catch (error) {
      this.options.logger.error({ err: error }, 'metrics port request failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  }
}


async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onSlow: () => void): Promise<T> {
  const slow = setTimeout(onSlow, 2_000);
  try {
    if (!signal) return await promise;
    signal.throwIfAborted();
    const { promise: aborted, reject } = Promise.withResolvers<never>();
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await Promise.race([promise, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    clearTimeout(slow);
  }
}
