// The audit's view of the policy engine: compile the policies once per snapshot, then evaluate one running
// pod (its spec, its namespace's labels, its namespace's LimitRanges) into the policies that match it and
// the findings they raise. The real binding is ./policy-engine.ts (src/policy); tests may hand the worker
// another module with the same `createEngine` export.
import type { ConcurrencyPolicy, Enforcement, ObjectMeta } from '../../api/index.ts';

export interface PodObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { nodeName?: string; [field: string]: unknown };
  status?: { phase?: string; [field: string]: unknown };
}

export interface LimitRangeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { limits?: unknown[] };
}

export interface EngineFinding {
  rule: string;
  container?: string;
  enforcement: Enforcement;
  message: string;
  /** Every policy raising it, the one that sets its enforcement first. */
  policies: readonly string[];
}

export interface PodEvaluation {
  /** Names of the policies whose match selects this pod. */
  matched: readonly string[];
  findings: readonly EngineFinding[];
}

export interface CompiledSnapshot {
  /** Policy name → generation, of the policies compiled. */
  generations: ReadonlyMap<string, number>;
}

export interface AuditEngine<Compiled extends CompiledSnapshot = CompiledSnapshot> {
  compile(policies: readonly ConcurrencyPolicy[], excludedNamespaces: readonly string[]): Compiled;
  evaluate(compiled: Compiled, pod: PodObject, namespaceLabels: Readonly<Record<string, string>>, limitRanges: readonly LimitRangeObject[]): PodEvaluation;
}

/** What an engine module exports (the worker imports it by URL). */
export interface EngineModule {
  createEngine: () => AuditEngine;
}

/** .js when built into dist/, .ts when run from src/. */
export const DEFAULT_ENGINE_MODULE = new URL(`./policy-engine${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
