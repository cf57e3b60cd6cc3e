// What the agent reads from a running Pod's spec: which policies match it (src/policy's selector rules)
// and GOMAXPROCS/GODEBUG as the kubelet resolves the container's env. Hand-written cases.
import { describe, expect, it } from 'vitest';
import type { ConcurrencyPolicy } from '../../src/api/v1alpha1.ts';
import { policyMatcher, specGoEnvironment } from '../../src/node-agent/pod-spec.ts';

function policy(name: string, match: ConcurrencyPolicy['spec']['match']): ConcurrencyPolicy {
  return { apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy', metadata: { name }, spec: { ...(match ? { match } : {}) } };
}

describe('policy matching of a running pod', () => {
  it('follows namespace and pod selectors, the metadata.name label and exclusions', () => {
    const every = policyMatcher(policy('every', undefined));
    const byTeam = policyMatcher(policy('team', { namespaceSelector: { matchLabels: { team: 'shop' } } }));
    const byName = policyMatcher(policy('by-name', { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } }));
    const excluding = policyMatcher(policy('excluding', { exclude: { namespaces: ['shop'] } }));
    const notCanary = policyMatcher(policy('not-canary', { podSelector: { matchLabels: { app: 'api' } }, exclude: { podSelector: { matchLabels: { track: 'canary' } } } }));
    const emptyExclude = policyMatcher(policy('empty-exclude', { exclude: { podSelector: {} } }));
    expect(every.matches('shop', undefined, undefined)).toBe(true);
    expect(byTeam.matches('shop', { team: 'shop' }, {})).toBe(true);
    expect(byTeam.matches('shop', {}, {})).toBe(false);
    expect(byName.matches('shop', undefined, {})).toBe(true);
    expect(byName.matches('web', undefined, {})).toBe(false);
    expect(excluding.matches('shop', {}, {})).toBe(false);
    expect(notCanary.matches('shop', {}, { app: 'api' })).toBe(true);
    expect(notCanary.matches('shop', {}, { app: 'api', track: 'canary' })).toBe(false);
    expect(emptyExclude.matches('shop', {}, { app: 'api' })).toBe(true);
  });
});

describe('GOMAXPROCS/GODEBUG from the pod spec', () => {
  const pod = (env: unknown[], resources?: unknown) => ({
    metadata: { name: 'api-0', namespace: 'shop' },
    spec: { containers: [{ name: 'app', env, ...(resources ? { resources } : {}) }, { name: 'sidecar', env: [{ name: 'GOMAXPROCS', value: '7' }] }] },
  });

  it('takes literal values, the last duplicate winning, per container', () => {
    expect(specGoEnvironment(pod([{ name: 'GOMAXPROCS', value: '4' }, { name: 'GOMAXPROCS', value: '2' }, { name: 'GODEBUG', value: 'containermaxprocs=0' }]), 'app'))
      .toEqual({ GOMAXPROCS: '2', GODEBUG: 'containermaxprocs=0' });
    expect(specGoEnvironment(pod([]), 'sidecar')).toEqual({ GOMAXPROCS: '7' });
    expect(specGoEnvironment(pod([]), 'app')).toEqual({});
  });

  it('resolves resourceFieldRef limits.cpu as the kubelet does (ceil), and leaves Secret values out', () => {
    const ref = [{ name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }];
    expect(specGoEnvironment(pod(ref, { limits: { cpu: '1500m' } }), 'app')).toEqual({ GOMAXPROCS: '2' });
    // No limit of its own and no pod-level one: the node's CPU count, unknowable from the spec.
    expect(specGoEnvironment(pod(ref), 'app')).toEqual({});
    expect(specGoEnvironment(pod([{ name: 'GODEBUG', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }]), 'app')).toEqual({});
  });
});
