// The admission decision the webhook calls: "Where enforcement happens" in DESIGN.md. Deny applies to
// what a person applies (bare Pods, workloads, Jobs/ReplicaSets no controller owns); children a
// controller creates from an admitted template get warnings and audit only; on UPDATE only violations
// the old object lacked are denied; anything being deleted is allowed; ephemeral containers only warn.
import type { V1LimitRange } from '@kubernetes/client-node';
import type { Evaluation } from './evaluate.ts';
import { evaluate } from './evaluate.ts';
import type { CompiledPolicies } from './compile.ts';
import type { Finding } from './findings.ts';
import { warningText, weaker } from './findings.ts';
import type { Labels } from './labels.ts';
import { asArray, asRecord } from './shape.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionInput {
  kind: string;
  operation: Operation;
  /** `resize`, `ephemeralcontainers`, `status`, … ; empty for the main resource. */
  subResource?: string;
  object: unknown;
  oldObject?: unknown;
  namespace?: string;
  namespaceLabels?: Labels;
  limitRanges?: readonly V1LimitRange[];
  /** Build fix patches (default true); see EvaluationInput.patches. */
  patches?: boolean;
}

export interface Decision {
  allowed: boolean;
  /** Findings that deny the request (enforcement Deny after every cap). */
  denials: Finding[];
  /** One line per Warn finding, ≤ 120 characters: rule id + short fix. */
  warnings: string[];
  /** Every finding, including Audit ones, for reports and metrics. */
  findings: Finding[];
  /** For status.message when denied. */
  message?: string;
  matchedPolicies: string[];
}

/** A fresh allow each time: callers may append to the arrays. */
const allow = (): Decision => ({ allowed: true, denials: [], warnings: [], findings: [], matchedPolicies: [] });

/** Owned by a controller: created from a template that was itself admitted. */
export function isControllerOwned(object: unknown): boolean {
  const owners = asArray(asRecord(asRecord(object)?.metadata)?.ownerReferences);
  for (const owner of owners) if (asRecord(owner)?.controller === true) return true;
  return false;
}

function isDeleting(object: unknown): boolean {
  const timestamp = asRecord(asRecord(object)?.metadata)?.deletionTimestamp;
  return timestamp !== undefined && timestamp !== null && timestamp !== '';
}

export function decide(compiled: CompiledPolicies, input: AdmissionInput): Decision {
  if (input.operation !== 'CREATE' && input.operation !== 'UPDATE') return allow();
  if (isDeleting(input.object)) return allow();
  const sub = input.subResource ?? '';
  if (sub !== '' && sub !== 'resize' && sub !== 'ephemeralcontainers') return allow();

  let cap: 'Deny' | 'Warn' = 'Deny';
  if (sub === 'ephemeralcontainers') cap = 'Warn'; // never block kubectl debug
  // A resize is a person acting on the running pod, not a controller stamping out its template.
  else if (sub !== 'resize' && isControllerOwned(input.object)) cap = 'Warn';

  const context = {
    kind: input.kind, namespace: input.namespace, namespaceLabels: input.namespaceLabels, limitRanges: input.limitRanges,
    ...(input.patches === false ? { patches: false } : {}),
  };
  const current: Evaluation = evaluate(compiled, { ...context, object: input.object, cap });
  let findings = current.findings;
  if (input.operation === 'UPDATE' && input.oldObject !== undefined && findings.some((f) => f.enforcement === 'Deny')) {
    // Only the old findings' keys are needed: never their fixes.
    const before = new Set(evaluate(compiled, { ...context, object: input.oldObject, patches: false }).findings.map((f) => f.key));
    findings = findings.map((f) => (f.enforcement === 'Deny' && before.has(f.key) ? { ...f, enforcement: weaker(f.enforcement, 'Warn') } : f));
  }

  const denials: Finding[] = [];
  const warnings: string[] = [];
  for (const finding of findings) {
    if (finding.enforcement === 'Deny') denials.push(finding);
    else if (finding.enforcement === 'Warn') warnings.push(warningText(finding));
  }
  const decision: Decision = { allowed: denials.length === 0, denials, warnings, findings, matchedPolicies: current.matchedPolicies };
  if (denials.length > 0) {
    decision.message = `concurrency-guard: ${denials.map((d) => `${d.rule}${d.container ? ` (${d.container})` : ''}: ${d.message}; fix: ${d.fix}`).join(' | ')}`;
  }
  return decision;
}
