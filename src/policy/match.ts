// Which pods a policy applies to: its namespace (by name and labels) and its pod or template labels,
// minus its excludes. Imports only labels.ts, so the node agent can use it without the engine's YAML
// parser and shell dialects (~14 MiB of RSS it has no use for).
import type { PolicyMatch } from '../api/index.ts';
import { compileSelector, selectorIsEmpty, type Labels } from './labels.ts';

export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** (namespace, its labels, the pod's labels) → whether the policy applies. */
export type PodMatcher = (namespace: string, namespaceLabels: Labels, podLabels: Labels) => boolean;

/** The namespace's labels with `kubernetes.io/metadata.name`, which the API server sets but a caller may lack. */
export function withNamespaceName(namespace: string, labels: Labels): Labels {
  return labels?.[NAMESPACE_NAME_LABEL] === namespace ? labels : { ...labels, [NAMESPACE_NAME_LABEL]: namespace };
}

/** Compiled once per policy generation. The operator's always-excluded namespaces are the caller's. */
export function compileMatch(match: PolicyMatch | undefined): PodMatcher {
  const matchNamespace = compileSelector(match?.namespaceSelector);
  const matchPod = compileSelector(match?.podSelector);
  const excludedNamespaces = new Set(match?.exclude?.namespaces ?? []);
  // An empty exclude selector would exclude every pod; read it as "exclude nothing" instead.
  const excludePod = selectorIsEmpty(match?.exclude?.podSelector) ? undefined : compileSelector(match?.exclude?.podSelector);
  return (namespace, namespaceLabels, podLabels) =>
    !excludedNamespaces.has(namespace) && matchNamespace(withNamespaceName(namespace, namespaceLabels))
    && matchPod(podLabels) && !excludePod?.(podLabels);
}
