// The webhook's Prometheus metrics, registered on an injected Registry (one per server instance, so tests
// and benchmarks can build many). Request metrics use controller-runtime's names so existing dashboards
// work. Every label has a bounded set of values: kinds and rule ids outside the known set are folded.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** controller-runtime labels requests by the handler's path. */
export const WEBHOOK_PATH = '/validate';

/** Sub-millisecond resolution at the bottom: the target is p99 ≤ 5 ms, default buckets start at 5 ms. */
const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Rule ids are a small fixed set; past this many distinct values new ones are counted as "other". */
const MAX_RULE_LABELS = 64;

/**
 * Counts kept in a Map on the hot path and handed to prom-client when it is scraped: a labelled
 * prom-client inc hashes its label object each time (~0.5-1 µs), and a review touches up to a dozen.
 */
class Tally<L extends string> {
  private readonly counts = new Map<string, { labels: Partial<Record<L, string | number>>; value: number }>();

  constructor(counter: Counter<L>) {
    const counts = this.counts;
    // collect() runs at scrape time: absolute values, rebuilt from the tally.
    (counter as unknown as { collect: () => void }).collect = function collect(this: Counter<L>): void {
      this.reset();
      for (const { labels, value } of counts.values()) this.inc(labels, value);
    };
  }

  add(key: string, labels: () => Partial<Record<L, string | number>>, n = 1): void {
    const entry = this.counts.get(key);
    if (entry) entry.value += n;
    else this.counts.set(key, { labels: labels(), value: n });
  }
}

export class WebhookMetrics {
  readonly requests: Counter<'webhook' | 'code'>;
  readonly latency: Histogram<'webhook'>;
  readonly inFlight: Gauge<'webhook'>;
  readonly decisions: Counter<'kind' | 'operation' | 'decision'>;
  readonly findings: Counter<'rule' | 'enforcement'>;
  readonly certificateReloads: Counter<'result'>;
  readonly certificateNotAfter: Gauge;
  readonly ready: Gauge;
  readonly connections: Counter;
  private readonly knownKinds: ReadonlySet<string>;
  private readonly seenRules = new Set<string>();
  private readonly requestTally: Tally<'webhook' | 'code'>;
  private readonly decisionTally: Tally<'kind' | 'operation' | 'decision'>;
  private readonly findingTally: Tally<'rule' | 'enforcement'>;

  constructor(registry: Registry, knownKinds: Iterable<string> = []) {
    const registers = [registry];
    this.knownKinds = new Set(knownKinds);
    this.requests = new Counter({
      name: 'controller_runtime_webhook_requests_total',
      help: 'Admission requests by HTTP status code.',
      labelNames: ['webhook', 'code'], registers,
    });
    this.latency = new Histogram({
      name: 'controller_runtime_webhook_latency_seconds',
      help: 'Time from routing an admission request to sending its answer.',
      labelNames: ['webhook'], buckets: LATENCY_BUCKETS, registers,
    });
    this.inFlight = new Gauge({
      name: 'controller_runtime_webhook_requests_in_flight',
      help: 'Admission reviews whose evaluation is pending (asynchronous evaluations only; synchronous ones finish within the request tick).',
      labelNames: ['webhook'], registers,
    });
    this.decisions = new Counter({
      name: 'concurrency_guard_webhook_decisions_total',
      help: 'Admission decisions by object kind (group/Kind, or "other"), operation and outcome (allowed, warned, denied).',
      labelNames: ['kind', 'operation', 'decision'], registers,
    });
    this.findings = new Counter({
      name: 'concurrency_guard_webhook_findings_total',
      help: 'Findings raised at admission by rule id and the enforcement applied.',
      labelNames: ['rule', 'enforcement'], registers,
    });
    this.certificateReloads = new Counter({
      name: 'concurrency_guard_webhook_certificate_reloads_total',
      help: 'Serving certificate changes seen: loaded, or rejected as invalid (the previous one stays).',
      labelNames: ['result'], registers,
    });
    this.certificateNotAfter = new Gauge({
      name: 'concurrency_guard_webhook_certificate_not_after_seconds',
      help: 'Expiry of the serving certificate in use (Unix seconds).',
      registers,
    });
    this.ready = new Gauge({
      name: 'concurrency_guard_webhook_ready',
      help: '1 when /readyz passes (certificate loaded, caches synced, not draining).',
      registers,
    });
    this.connections = new Counter({
      name: 'concurrency_guard_webhook_tls_connections_total',
      help: 'TLS connections accepted (the API server keeps a few alive and re-dials after a certificate rotation).',
      registers,
    });
    this.requestTally = new Tally(this.requests);
    this.decisionTally = new Tally(this.decisions);
    this.findingTally = new Tally(this.findings);
    // Zero series exist from the start, so rate() and absent() behave before the first request.
    this.requestTally.add('200', () => ({ webhook: WEBHOOK_PATH, code: '200' }), 0);
    this.inFlight.set({ webhook: WEBHOOK_PATH }, 0);
  }

  observeRequest(code: number, seconds: number): void {
    this.requestTally.add(String(code), () => ({ webhook: WEBHOOK_PATH, code: String(code) }));
    this.latency.observe({ webhook: WEBHOOK_PATH }, seconds);
  }

  observeDecision(kindKey: string, operation: string, decision: 'allowed' | 'warned' | 'denied'): void {
    const kind = this.knownKinds.has(kindKey) ? kindKey : 'other';
    this.decisionTally.add(`${kind}|${operation}|${decision}`, () => ({ kind, operation, decision }));
  }

  observeFinding(rule: string, enforcement: string): void {
    let label = rule;
    if (!this.seenRules.has(rule)) {
      if (this.seenRules.size >= MAX_RULE_LABELS) label = 'other';
      else this.seenRules.add(rule);
    }
    this.findingTally.add(`${label}|${enforcement}`, () => ({ rule: label, enforcement }));
  }
}
