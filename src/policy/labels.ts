// Label selectors compiled once per policy generation into plain predicates, so matching a pod against
// twenty policies is a handful of map lookups and no allocation.
import type { LabelSelector } from '../api/index.ts';

export type Labels = Readonly<Record<string, string>> | undefined;
export type LabelPredicate = (labels: Labels) => boolean;

const MATCH_ALL: LabelPredicate = () => true;

/** Kubernetes LabelSelector semantics; an absent or empty selector matches everything. */
export function compileSelector(selector: LabelSelector | undefined): LabelPredicate {
  if (!selector) return MATCH_ALL;
  const tests: LabelPredicate[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    tests.push((labels) => labels?.[key] === value);
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const key = requirement.key;
    const values = new Set(requirement.values ?? []);
    switch (requirement.operator) {
      case 'In':
        tests.push((labels) => labels !== undefined && key in labels && values.has(labels[key] as string));
        break;
      case 'NotIn':
        tests.push((labels) => labels === undefined || !(key in labels) || !values.has(labels[key] as string));
        break;
      case 'Exists':
        tests.push((labels) => labels !== undefined && key in labels);
        break;
      case 'DoesNotExist':
        tests.push((labels) => labels === undefined || !(key in labels));
        break;
      default:
        // An operator the API server would have rejected: match nothing rather than everything.
        return () => false;
    }
  }
  if (tests.length === 0) return MATCH_ALL;
  if (tests.length === 1) return tests[0] as LabelPredicate;
  return (labels) => {
    for (const test of tests) if (!test(labels)) return false;
    return true;
  };
}

/** True when the selector has at least one requirement (an empty exclude selector excludes nothing). */
export function selectorIsEmpty(selector: LabelSelector | undefined): boolean {
  return !selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0);
}
