// The binding of src/policy's decision function to the admission caches: the compiled policy set, the
// namespace's labels and its LimitRanges come from informers; the engine decides which findings deny
// (children of admitted workloads and ephemeral containers warn, UPDATE denies only new violations).
import type { V1LimitRange } from '@kubernetes/client-node';
import type { ConcurrencyPolicy } from '../api/index.ts';
import { compilePolicies, decide, type CompiledPolicies } from '../policy/index.ts';
import type { EvaluationInput, PolicyEvaluation } from './admission.ts';
import type { AdmissionCaches, LimitRangeObject } from './caches.ts';

/** Compiles policies with the operator's own namespaces excluded everywhere. */
export function admissionCompiler(excludedNamespaces: readonly string[]): (policies: ConcurrencyPolicy[]) => CompiledPolicies {
  return (policies) => compilePolicies(policies, { excludedNamespaces });
}

/** What the engine needs from the caches (an interface so the benchmark can feed it without informers). */
export interface EngineState {
  readonly compiled: CompiledPolicies;
  namespaceLabels(name: string): Record<string, string> | undefined;
  limitRanges(namespace: string): LimitRangeObject[];
}

export function engineEvaluate(state: EngineState | AdmissionCaches<CompiledPolicies>, input: EvaluationInput): PolicyEvaluation {
  const limitRanges = state.limitRanges(input.namespace);
  const decision = decide(state.compiled, {
    kind: input.kind,
    operation: input.operation,
    subResource: input.subResource,
    object: input.object,
    ...(input.oldObject ? { oldObject: input.oldObject } : {}),
    namespace: input.namespace,
    namespaceLabels: state.namespaceLabels(input.namespace),
    // A validating webhook cannot return patches; the fix travels as text in the message.
    patches: false,
    // LimitRanges from the informer are the API's JSON; the engine reads them defensively.
    ...(limitRanges.length > 0 ? { limitRanges: limitRanges as unknown as V1LimitRange[] } : {}),
  });
  if (decision.findings.length === 0) return NOTHING;
  return {
    denials: decision.denials.map((f) => ({
      rule: f.rule,
      message: `${f.container ? `container ${f.container}: ` : ''}${f.message}; fix: ${f.fix}`,
      field: f.path,
      ...(f.container ? { container: f.container } : {}),
    })),
    warnings: decision.warnings,
    findings: decision.findings.map((f) => ({ rule: f.rule, enforcement: f.enforcement })),
    ...(decision.message ? { message: decision.message } : {}),
  };
}

const NOTHING: PolicyEvaluation = { denials: [], warnings: [], findings: [] };
