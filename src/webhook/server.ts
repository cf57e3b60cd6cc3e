// The HTTPS admission server (fastify 5, HTTP/1.1). It owns the wire: parsing, status codes, timeouts,
// drain behaviour, one log line and the metrics per review. What to decide is the `admit` function's job.
// Every well-formed review gets a 200 with an AdmissionReview (a non-200 is a webhook failure for the API
// server, and failurePolicy then decides); only input the API server would never send gets a 4xx.
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import type { CertificatePair } from './certificate.ts';
import { WEBHOOK_PATH, type WebhookMetrics } from './metrics.ts';
import {
  allow, deny, kindKey, parseAdmissionReview, reviewResponse,
  type AdmissionRequest, type AdmissionResponse, type StatusCause,
} from './review.ts';

export interface FindingCount {
  rule: string;
  enforcement: string;
}

export interface AdmissionDecision {
  allowed: boolean;
  /** Deny only: becomes status.message. */
  message?: string;
  /** Deny only: becomes status.details.causes, one per denying finding. */
  causes?: StatusCause[];
  /** Each ≤ 120 characters. */
  warnings?: string[];
  /** For the findings metric. */
  findings?: readonly FindingCount[];
}

/** Decides one review. Synchronous in practice (caches are in memory); a Promise is accepted for tests. */
export type Admit = (request: AdmissionRequest) => AdmissionDecision | Promise<AdmissionDecision>;

export interface Readiness {
  ready: boolean;
  /** Why not, for /readyz's body. */
  reasons: string[];
}

export type FailurePolicy = 'Ignore' | 'Fail';

export interface WebhookServerOptions {
  certificate: CertificatePair;
  admit: Admit;
  logger: Logger;
  metrics: WebhookMetrics;
  readiness: () => Readiness;
  /** What the VWC says; the answer given when evaluation overruns its time matches it. */
  failurePolicy?: FailurePolicy;
  /** The VWC's timeoutSeconds (1..30); the handler answers before it. */
  timeoutSeconds?: number;
  bodyLimitBytes?: number;
  keepAliveTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Override of the handler deadline derived from timeoutSeconds. */
  handlerTimeoutMs?: number;
  /**
   * Enforce the deadline with fastify's handlerTimeout instead of our own (benchmark A/B only): it arms
   * an AbortController per request and aborts it on every request's close, 7-20 µs per review.
   */
  fastifyHandlerTimeout?: boolean;
}

/**
 * An UPDATE review carries object and oldObject, each up to the API server's 3 MiB request limit, plus the
 * envelope; fastify's 1 MiB default would turn large UPDATEs into 413s (webhook failures).
 */
export const DEFAULT_BODY_LIMIT_BYTES = 8 * 1024 * 1024;
/** Above the API server's idle connection reuse (Go's http.Transport IdleConnTimeout, 90 s). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 120_000;
/** The whole request must arrive within this (the webhook timeout is at most 30 s anyway). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_TIMEOUT_SECONDS = 3;
/** Time kept between our answer and the API server's deadline: its own network and queueing. */
const HANDLER_MARGIN_MS = 500;

export type WebhookServer = FastifyInstance<HttpsServer>;

export interface WebhookServerHandle {
  app: WebhookServer;
  /**
   * Serves a new certificate on new connections (setSecureContext), and retires the connections opened
   * under the previous one: each gets `Connection: close` on its next answer, so clients such as the API
   * server re-dial and verify the new certificate soon instead of whenever their idle timeout ends.
   */
  setCertificate: (pair: CertificatePair) => void;
}

/** The certificate generation a TLS connection was opened under. */
const connectionGeneration = Symbol('certificate generation');
type TaggedSocket = { [connectionGeneration]?: number };

export function handlerTimeoutMs(timeoutSeconds: number): number {
  return Math.max(250, timeoutSeconds * 1000 - HANDLER_MARGIN_MS);
}

function jsonError(reply: FastifyReply, code: number, message: string): FastifyReply {
  return reply.code(code).type('application/json').send({ code, message });
}

export function buildWebhookServer(options: WebhookServerOptions): WebhookServerHandle {
  const { admit, logger, metrics } = options;
  let certificateGeneration = 0;
  const failurePolicy = options.failurePolicy ?? 'Ignore';
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const handlerTimeout = options.handlerTimeoutMs ?? handlerTimeoutMs(timeoutSeconds);

  const app = Fastify({
    https: { cert: options.certificate.certPem, key: options.certificate.keyPem, minVersion: 'TLSv1.2' },
    loggerInstance: logger,
    // One line per review is written by the handler; fastify's two lines per request would double it.
    logController: new LogController({ disableRequestLogging: true }),
    // A per-request child logger only adds a reqId we do not use (the review uid identifies a line).
    childLoggerFactory: (parent) => parent,
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    // The handler's deadline is ours (see the route): fastify's costs an AbortController per request.
    ...(options.fastifyHandlerTimeout ? { handlerTimeout } : {}),
    // A 503 while draining is a webhook failure; the API server still sends to a terminating replica
    // (kubernetes#127335), so keep answering until the connections are gone.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // A `__proto__` key in an object is dropped rather than failing the whole review with a 400.
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
  }) as unknown as WebhookServer;

  function finish(reply: FastifyReply, request: AdmissionRequest, response: AdmissionResponse, decision: AdmissionDecision | undefined): void {
    const seconds = reply.elapsedTime / 1000;
    const generation = (reply.raw.socket as TaggedSocket | null)?.[connectionGeneration];
    if (generation !== undefined && generation !== certificateGeneration) void reply.header('connection', 'close');
    metrics.observeRequest(200, seconds);
    const outcome = !response.allowed ? 'denied' : response.warnings ? 'warned' : 'allowed';
    const key = kindKey(request.kind);
    metrics.observeDecision(key, request.operation, outcome);
    if (decision?.findings) for (const finding of decision.findings) metrics.observeFinding(finding.rule, finding.enforcement);
    logger.info({
      uid: request.uid, kind: key, op: request.operation, sub: request.subResource, ns: request.namespace, owner: controllerKind(request.object),
      allowed: response.allowed, warnings: response.warnings?.length ?? 0, ms: Math.round(seconds * 1e5) / 100,
    }, 'review');
    void reply.send(reviewResponse(response));
  }

  function respond(reply: FastifyReply, request: AdmissionRequest, decision: AdmissionDecision): void {
    if (reply.sent) return; // the handler timeout answered already
    const response = decision.allowed
      ? allow(request.uid, decision.warnings)
      : deny(request.uid, decision.message ?? 'denied by concurrency-guard', decision.causes ?? [], decision.warnings);
    finish(reply, request, response, decision);
  }

  function evaluationFailed(reply: FastifyReply, request: AdmissionRequest, error: unknown): void {
    if (reply.sent) return;
    logger.error({ uid: request.uid, err: error }, 'admission evaluation failed');
    finish(reply, request, failureAnswer(request.uid, 'evaluation failed'), undefined);
  }

  /** The explicit answer when we cannot decide: what failurePolicy would do, but with a reason attached. */
  function failureAnswer(uid: string, why: string): AdmissionResponse {
    return failurePolicy === 'Fail'
      ? deny(uid, `concurrency-guard could not evaluate this object (${why}); retry, or ask the cluster operator`, [])
      : allow(uid, [`concurrency-guard: not checked (${why}); the audit will report findings`]);
  }

  // The deadline below timeoutSeconds is armed only when evaluation is asynchronous: a synchronous one
  // (the engine on in-memory caches, always in production) cannot be interrupted by a timer anyway, and
  // the body's arrival is bounded by requestTimeout. When it fires, the answer is explicit (allow with a
  // warning under Ignore, deny under Fail), never a 503.
  app.post(WEBHOOK_PATH, (req: FastifyRequest, reply: FastifyReply) => {
    const parsed = parseAdmissionReview(req.body);
    if (!parsed.ok) {
      metrics.observeRequest(400, reply.elapsedTime / 1000);
      logger.warn({ uid: parsed.uid, reason: parsed.message }, 'bad review');
      return jsonError(reply, 400, parsed.message);
    }
    const { request } = parsed;
    let decision: AdmissionDecision | Promise<AdmissionDecision>;
    try {
      decision = admit(request);
    } catch (error) {
      evaluationFailed(reply, request, error);
      return reply;
    }
    if (decision instanceof Promise) {
      metrics.inFlight.inc({ webhook: WEBHOOK_PATH });
      const deadline = options.fastifyHandlerTimeout ? undefined : setTimeout(() => {
        if (!reply.sent) finish(reply, request, failureAnswer(request.uid, `timed out after ${handlerTimeout} ms`), undefined);
      }, Math.max(0, handlerTimeout - reply.elapsedTime));
      decision.then(
        (value) => respond(reply, request, value),
        (error: unknown) => evaluationFailed(reply, request, error),
      ).finally(() => {
        clearTimeout(deadline);
        metrics.inFlight.dec({ webhook: WEBHOOK_PATH });
      });
      return reply;
    }
    respond(reply, request, decision);
    return reply;
  });

  app.get('/healthz', (_req, reply) => reply.type('text/plain').send('ok'));
  app.get('/readyz', (_req, reply) => {
    const readiness = options.readiness();
    return readiness.ready
      ? reply.type('text/plain').send('ok')
      : reply.code(503).type('text/plain').send(`not ready: ${readiness.reasons.join('; ')}`);
  });

  app.setErrorHandler((error: FastifyError, req, reply) => {
    if (error.code === 'FST_ERR_HANDLER_TIMEOUT') {
      const parsed = req.body === undefined ? undefined : parseAdmissionReview(req.body);
      if (parsed?.ok) {
        // in-flight is decremented when the abandoned evaluation settles.
        finish(reply, parsed.request, failureAnswer(parsed.request.uid, `timed out after ${handlerTimeout} ms`), undefined);
        return;
      }
      metrics.observeRequest(408, reply.elapsedTime / 1000);
      return jsonError(reply, 408, `request not received within ${handlerTimeout} ms`);
    }
    const status = error.statusCode ?? 500;
    if (req.url === WEBHOOK_PATH) metrics.observeRequest(status, reply.elapsedTime / 1000);
    if (status >= 500) {
      logger.error({ err: error }, 'webhook request failed');
      return jsonError(reply, status, 'internal error');
    }
    logger.warn({ code: error.code, status }, 'bad request');
    return jsonError(reply, status, badRequestMessage(error));
  });

  app.setNotFoundHandler((req, reply) => jsonError(reply, 404, `no route ${req.method} ${req.url}; admission reviews go to POST ${WEBHOOK_PATH}`));

  app.server.on('secureConnection', (socket: TaggedSocket) => {
    socket[connectionGeneration] = certificateGeneration;
    metrics.connections.inc();
  });
  return {
    app,
    setCertificate: (pair) => {
      app.server.setSecureContext({ cert: pair.certPem, key: pair.keyPem, minVersion: 'TLSv1.2' });
      certificateGeneration++;
    },
  };
}

/** The kind of the object's controlling owner (a ReplicaSet for a Deployment's pod), for the log line. */
function controllerKind(object: Record<string, unknown> | undefined): string | undefined {
  const refs = (object?.['metadata'] as { ownerReferences?: unknown } | undefined)?.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  for (const ref of refs as { controller?: unknown; kind?: unknown }[]) if (ref?.controller === true && typeof ref.kind === 'string') return ref.kind;
  return undefined;
}

function badRequestMessage(error: FastifyError): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return 'malformed AdmissionReview: the body is not valid JSON';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return 'malformed AdmissionReview: the body is empty';
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return `AdmissionReview too large: ${error.message}`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'unsupported content type: AdmissionReviews are application/json';
    default: return error.message;
  }
}
