// Messages between the main thread (policies, namespaces and LimitRanges informers; policy status) and
// the audit worker (pod and report informers, evaluation, report writes). Plain data only: everything
// crosses the thread boundary by structured clone. Compiled policies hold closures (label predicates),
// which structured clone cannot carry, so the main thread sends the policies and the worker compiles
// them once per snapshot.
import type { ConcurrencyPolicy } from '../../api/index.ts';
import type { KubeConnection } from '../../kube/index.ts';
import type { LogLevel } from '../../runtime/index.ts';
import type { PolicyAuditStats } from '../policy-status.ts';
import type { LimitRangeObject } from './engine.ts';
import type { ReportsMode } from './report-status.ts';

export interface AuditSettings {
  reportsMode: ReportsMode;
  reportTtlMs: number;
  resyncMs: number;
  /** kube-system, kube-node-lease and the operator's own namespace. */
  excludedNamespaces: readonly string[];
  /** Report writes (create, status apply, delete) per second, across all pods. */
  reportWritesPerSecond: number;
  reportWriteBurst: number;
  /** Pods evaluated and written at the same time. */
  concurrency: number;
}

export interface AuditWorkerData {
  connection: KubeConnection;
  settings: AuditSettings;
  /** URL of a module exporting createEngine() (default: the src/policy binding). */
  engineModule: string;
  logLevel: LogLevel;
}

export type ToWorker =
  | { type: 'policies'; policies: ConcurrencyPolicy[] }
  | { type: 'namespaces'; namespaces: [name: string, labels: Record<string, string>][] }
  | { type: 'limitRanges'; limitRanges: LimitRangeObject[] }
  | { type: 'stop' };

/** One completed pass over every pod: what the bench and the logs quote. */
export interface PassFigures {
  reason: 'policies' | 'resync' | 'startup';
  pods: number;
  /** From the pass's start until the queue drained (includes writes). */
  durationMs: number;
  /** Time spent in the engine alone. */
  evaluationMs: number;
  /** Report writes sent during the pass, by outcome. */
  writes: Record<string, number>;
}

export type FromWorker =
  | { type: 'synced'; pods: number; listMs: number }
  | { type: 'stats'; policies: [name: string, stats: PolicyAuditStats][] }
  | { type: 'pass'; figures: PassFigures }
  | { type: 'fatal'; error: string }
  | { type: 'stopped' };
