// Admission and the audit ask the engine for findings without fix patches (building them was 70% of an
// admission's evaluation); the findings themselves must not change.
import { describe, expect, it } from 'vitest';
import { compilePolicies, decide } from '../../src/policy/index.ts';
import type { ConcurrencyPolicy } from '../../src/api/index.ts';

const policy: ConcurrencyPolicy = {
  apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy',
  metadata: { name: 'go', generation: 1 },
  spec: { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 0 } },
};

const pod = {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api', namespace: 'shop' },
  spec: { containers: [{ name: 'app', image: 'app:1', env: [{ name: 'GOMAXPROCS', value: '16' }], resources: { limits: { cpu: '2' } } }] },
};

describe('patches: false', () => {
  const compiled = compilePolicies([policy], { excludedNamespaces: [] });
  const input = { kind: 'Pod', operation: 'CREATE' as const, object: pod, namespace: 'shop' };

  it('keeps every finding and drops only the patch', () => {
    const withPatches = decide(compiled, input);
    const without = decide(compiled, { ...input, patches: false });
    expect(withPatches.findings.map((f) => f.rule)).toEqual(['gomaxprocs/above-cpu-limit']);
    // The container has its own CPU limit, so the fix follows it instead of hard-coding 2.
    expect(withPatches.findings[0]?.patch).toEqual([
      { op: 'remove', path: '/spec/containers/0/env/0/value' },
      { op: 'add', path: '/spec/containers/0/env/0/valueFrom', value: { resourceFieldRef: { divisor: '1', resource: 'limits.cpu' } } },
    ]);
    expect(without.findings.map((f) => ({ ...f, patch: undefined }))).toEqual(withPatches.findings.map((f) => ({ ...f, patch: undefined })));
    expect(without.findings[0]?.patch).toBeUndefined();
    expect(without.allowed).toBe(false);
  });
});
