// The audit's binding to src/policy: the same compilePolicies and evaluate the webhook uses, applied to a
// running Pod. No enforcement cap: the audit reports each finding with the enforcement the policies
// give it (a Pod created by a ReplicaSet is audited as the pod it is).
import type { V1LimitRange } from '@kubernetes/client-node';
import type { ConcurrencyPolicy } from '../../api/index.ts';
import { compilePolicies, evaluate, type CompiledPolicies } from '../../policy/index.ts';
import type { AuditEngine, CompiledSnapshot, EngineModule } from './engine.ts';

interface Compiled extends CompiledSnapshot {
  policies: CompiledPolicies;
}

export function createEngine(): AuditEngine {
  const engine: AuditEngine<Compiled> = {
    compile(policies: readonly ConcurrencyPolicy[], excludedNamespaces: readonly string[]): Compiled {
      return {
        policies: compilePolicies(policies, { excludedNamespaces }),
        generations: new Map(policies.map((p) => [p.metadata.name ?? '', p.metadata.generation ?? 0])),
      };
    },
    evaluate(compiled, pod, namespaceLabels, limitRanges) {
      const result = evaluate(compiled.policies, {
        kind: 'Pod', object: pod, namespace: pod.metadata.namespace ?? 'default', namespaceLabels,
        limitRanges: limitRanges as unknown as readonly V1LimitRange[],
        // Reports carry the fix as text; the patches are only for `check --fix`.
        patches: false,
      });
      return {
        matched: result.matchedPolicies,
        findings: result.findings.map((f) => ({
          rule: f.rule, enforcement: f.enforcement, message: f.message, policies: f.policies,
          ...(f.container !== undefined ? { container: f.container } : {}),
        })),
      };
    },
  };
  return engine;
}

export default { createEngine } satisfies EngineModule;
