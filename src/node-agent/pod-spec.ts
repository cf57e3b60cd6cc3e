// What the agent reads from a running Pod's spec through src/policy's own rules, importing only the
// small pieces it needs (match.ts, env.ts, quantity.ts): the policy engine's full import (facts.ts
// pulls a YAML parser and the shell dialects) costs the agent ~14 MiB of RSS it has no use for.
//   - which ConcurrencyPolicies match the pod: src/policy's own matcher (match.ts);
//   - GOMAXPROCS and GODEBUG as the kubelet resolves the container's env (resolveEnv: last duplicate
//     wins, $(VAR) expansion, resourceFieldRef from the pod's own resources — a running Pod carries
//     its LimitRange defaults already), known values only.
import type { V1Container } from '@kubernetes/client-node';
import type { ConcurrencyPolicy } from '../api/v1alpha1.ts';
import { lookupEnv, resolveEnv, type ResourceResolver } from '../policy/env.ts';
import { compileMatch, type PodMatcher } from '../policy/match.ts';
import { parseQuantityValue, type Quantity } from '../policy/quantity.ts';
import type { GoEnvironment } from './readers/environ.ts';

export interface PolicyMatcher {
  policy: ConcurrencyPolicy;
  matches: PodMatcher;
}

export function policyMatcher(policy: ConcurrencyPolicy): PolicyMatcher {
  return { policy, matches: compileMatch(policy.spec?.match) };
}

export interface PodSpecLike {
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: unknown[]; resources?: { limits?: Record<string, unknown> } };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function containersOf(pod: PodSpecLike): Record<string, unknown>[] {
  return (pod.spec?.containers ?? []).map(record).filter((c): c is Record<string, unknown> => c !== undefined);
}

function containerResource(container: Record<string, unknown> | undefined, resource: string): Quantity | undefined {
  const [section, name] = resource.split('.', 2);
  const map = record(record(container?.resources)?.[section === 'limits' ? 'limits' : 'requests']);
  return name && map ? parseQuantityValue(map[name]) : undefined;
}

/** GOMAXPROCS/GODEBUG of a container as its pod spec settles them; a name is left out when unknowable. */
export function specGoEnvironment(pod: PodSpecLike, containerName: string): GoEnvironment {
  const containers = containersOf(pod);
  const container = containers.find((c) => c.name === containerName);
  if (!container) return {};
  const resolver: ResourceResolver = {
    resource: (name, resource) => containerResource(containers.find((c) => c.name === name), resource),
    podLimit: (resource) => parseQuantityValue(pod.spec?.resources?.limits?.[resource]),
    labels: pod.metadata.labels,
    annotations: pod.metadata.annotations,
    name: pod.metadata.name,
    namespace: pod.metadata.namespace,
    serviceLinks: record(pod.spec)?.enableServiceLinks !== false,
  };
  const env = resolveEnv(container as unknown as V1Container, resolver);
  const result: GoEnvironment = {};
  for (const name of ['GOMAXPROCS', 'GODEBUG'] as const) {
    const value = lookupEnv(env, name);
    if (value && value !== 'maybe-envFrom' && value.known) result[name] = value.value;
  }
  return result;
}
