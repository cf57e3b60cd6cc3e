// The main thread's side of the audit: starts the worker for one leadership term, sends it snapshots of
// the policies, namespace labels and LimitRanges whenever they change (coalesced: a burst of events is
// one message), passes its per-policy figures on, and restarts it after a crash. Stopping asks the worker
// to finish its in-flight writes; a worker that does not answer in time is terminated.
import { Worker } from 'node:worker_threads';
import type { ConcurrencyPolicy } from '../../api/index.ts';
import { backoffDelay, describeError, type Informer, type KubeConnection, type KubeLogger, type KubeObject } from '../../kube/index.ts';
import type { LogLevel } from '../../runtime/index.ts';
import type { PolicyAuditStats } from '../policy-status.ts';
import { DEFAULT_ENGINE_MODULE, type LimitRangeObject } from './engine.ts';
import type { AuditSettings, AuditWorkerData, FromWorker, PassFigures, ToWorker } from './protocol.ts';

export interface AuditSupervisorOptions {
  connection: KubeConnection;
  settings: AuditSettings;
  policies: Informer<ConcurrencyPolicy>;
  namespaces: Informer<KubeObject>;
  limitRanges: Informer<LimitRangeObject & KubeObject>;
  engineModule?: string;
  logLevel: LogLevel;
  logger: KubeLogger;
  onStats: (stats: ReadonlyMap<string, PolicyAuditStats>) => void;
  onPass?: (figures: PassFigures) => void;
  onSynced?: (pods: number, listMs: number) => void;
  /** The worker's V8 young generation, MiB. */
  youngGenerationMb?: number;
}

const SNAPSHOT_DEBOUNCE_MS = 100;
const STOP_TIMEOUT_MS = 10_000;
// Built into dist/ (what the image runs) the modules are .js; run from src/ (tests, development), .ts.
const MODULE_EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const WORKER_URL = new URL(`./worker${MODULE_EXTENSION}`, import.meta.url);
/** bench/controller.ts at 10k pods: peak RSS ≈ 400 MiB with V8's default, ≈ 300 MiB with 8 (4 gains nothing more). */
const DEFAULT_YOUNG_GENERATION_MB = 8;

export class AuditSupervisor {
  private readonly options: AuditSupervisorOptions;
  private worker: Worker | undefined;
  private stopping = false;
  private crashes = 0;
  private readonly pending = new Set<'policies' | 'namespaces' | 'limitRanges'>();
  private debounce: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  private namespaceLabelsSent = new Map<string, string>();

  constructor(options: AuditSupervisorOptions) {
    this.options = options;
  }

  start(): void {
    this.stopping = false;
    const changed = (kind: 'policies' | 'namespaces' | 'limitRanges') => (): void => this.schedule(kind);
    this.unsubscribe.push(this.options.policies.on({ add: changed('policies'), update: this.policyUpdate, delete: changed('policies') }));
    this.unsubscribe.push(this.options.namespaces.on({ add: changed('namespaces'), update: changed('namespaces'), delete: changed('namespaces') }));
    this.unsubscribe.push(this.options.limitRanges.on({ add: changed('limitRanges'), update: changed('limitRanges'), delete: changed('limitRanges') }));
    this.spawn();
  }

  /** Our own status writes bump resourceVersion, not generation: only a spec change is a new snapshot. */
  private readonly policyUpdate = (policy: ConcurrencyPolicy, old: ConcurrencyPolicy): void => {
    if (policy.metadata.generation !== old.metadata.generation || policy.metadata.uid !== old.metadata.uid) this.schedule('policies');
  };

  /**
   * `immediate` (leadership lost): the worker is terminated at once, so no write of a former leader is
   * still going out when the next one starts. Otherwise (shutdown) in-flight writes may finish first.
   */
  async stop(options: { immediate?: boolean } = {}): Promise<void> {
    this.stopping = true;
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.debounce) clearTimeout(this.debounce);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    if (options.immediate) {
      await worker.terminate();
      return;
    }
    const stopped = new Promise<void>((resolve) => {
      worker.on('message', (message: FromWorker) => { if (message.type === 'stopped') resolve(); });
      worker.once('exit', () => resolve());
    });
    worker.postMessage({ type: 'stop' } satisfies ToWorker);
    const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
    await stopped;
    clearTimeout(timer);
    await worker.terminate();
  }

  private spawn(): void {
    const data: AuditWorkerData = {
      connection: this.options.connection, settings: this.options.settings,
      engineModule: this.options.engineModule ?? DEFAULT_ENGINE_MODULE, logLevel: this.options.logLevel,
    };
    // A worker inherits the process's execArgv; --input-type (a parent started with -e) makes it refuse a file.
    const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--input-type'));
    // A small young generation: the audit's garbage is short-lived page buffers and parsed pods, and every
    // MiB V8 reserves for it counts in the pod's RSS (bench/controller.ts measures the effect).
    const worker = new Worker(WORKER_URL, { workerData: data, name: 'concurrency-guard-audit', execArgv, resourceLimits: { maxYoungGenerationSizeMb: this.options.youngGenerationMb ?? DEFAULT_YOUNG_GENERATION_MB } });
    this.worker = worker;
    worker.on('message', (message: FromWorker) => this.received(message));
    worker.on('error', (error) => this.options.logger.error({ error: describeError(error) }, 'audit worker failed'));
    worker.on('exit', (code) => {
      if (this.worker !== worker || this.stopping) return;
      this.worker = undefined;
      this.crashes++;
      const delay = backoffDelay(this.crashes, { initialMs: 1_000, maxMs: 60_000, jitter: 0.3 });
      this.options.logger.error({ code, restartInMs: delay }, 'audit worker exited; restarting it');
      this.restartTimer = setTimeout(() => { if (!this.stopping) this.spawn(); }, delay);
    });
    this.namespaceLabelsSent = new Map();
    // A new worker knows nothing yet: everything, at once.
    this.send('policies');
    this.send('namespaces');
    this.send('limitRanges');
  }

  private received(message: FromWorker): void {
    switch (message.type) {
      case 'stats': this.options.onStats(new Map(message.policies)); break;
      case 'pass':
        this.crashes = 0;
        this.options.onPass?.(message.figures);
        break;
      case 'synced':
        this.options.logger.info({ pods: message.pods, listMs: message.listMs }, 'audit informers synced');
        this.options.onSynced?.(message.pods, message.listMs);
        break;
      case 'fatal': this.options.logger.error({ error: message.error }, 'audit worker could not start'); break;
      case 'stopped': break;
    }
  }

  private schedule(kind: 'policies' | 'namespaces' | 'limitRanges'): void {
    this.pending.add(kind);
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      for (const pending of [...this.pending]) this.send(pending);
      this.pending.clear();
    }, SNAPSHOT_DEBOUNCE_MS);
  }

  private send(kind: 'policies' | 'namespaces' | 'limitRanges'): void {
    const worker = this.worker;
    if (!worker) return;
    let message: ToWorker;
    if (kind === 'policies') {
      message = { type: 'policies', policies: this.options.policies.list().map((p) => ({ ...p, status: {} })) };
    } else if (kind === 'namespaces') {
      const namespaces = this.options.namespaces.list().map((ns): [string, Record<string, string>] => [ns.metadata.name ?? '', ns.metadata.labels ?? {}]);
      // Namespace objects change for many reasons (status, annotations); only labels matter here.
      const fingerprint = new Map(namespaces.map(([name, labels]) => [name, JSON.stringify(labels)]));
      if (this.namespaceLabelsSent.size === fingerprint.size && [...fingerprint].every(([n, l]) => this.namespaceLabelsSent.get(n) === l)) return;
      this.namespaceLabelsSent = fingerprint;
      message = { type: 'namespaces', namespaces };
    } else {
      message = { type: 'limitRanges', limitRanges: this.options.limitRanges.list().map((lr) => ({ metadata: lr.metadata, ...(lr.spec ? { spec: lr.spec } : {}) })) };
    }
    worker.postMessage(message);
  }
}
