// The audit's binding to the real policy engine, and the pod slimming the audit's cache relies on: a
// slimmed pod must evaluate exactly as the full pod does (if the engine starts reading a field the slim
// drops, this fails), and hand-written pods give hand-written rule ids.
import { describe, expect, it } from 'vitest';
import type { ConcurrencyPolicy } from '../../src/api/index.ts';
import type { PodObject } from '../../src/controllers/audit/engine.ts';
import { createEngine } from '../../src/controllers/audit/policy-engine.ts';
import { slimPod } from '../../src/controllers/audit/slim.ts';
import { WriteBudget } from '../../src/controllers/audit/auditor.ts';
import { podObject, REALISTIC_CONTAINERS } from './webhook-fixtures.ts';

function policy(name: string, spec: ConcurrencyPolicy['spec'], generation = 1): ConcurrencyPolicy {
  return { apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy', metadata: { name, generation }, spec };
}

const POLICIES = [
  policy('gomaxprocs-deny', { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 0 }, match: { namespaceSelector: { matchLabels: { team: 'shop' } } } }),
  policy('ulimits-warn', { enforcement: 'Warn', ulimits: { nofile: { minSoft: 65536 }, onUndeclared: 'Warn' } }, 3),
  policy('sysctls-audit', { sysctls: { allowedUnsafe: ['net.core.somaxconn'], minimums: { 'net.core.somaxconn': 4096 } } }),
  policy('other-team', { gomaxprocs: { maxOverCPULimit: 0 }, match: { namespaceSelector: { matchLabels: { team: 'other' } } } }),
];

function pods(): PodObject[] {
  const realistic = podObject({ namespace: 'shop', containers: REALISTIC_CONTAINERS }) as unknown as PodObject;
  const tuned = podObject({
    name: 'tuned', namespace: 'shop',
    containers: [{ name: 'app', env: [{ name: 'GOMAXPROCS', value: '8' }], resources: { limits: { cpu: '1' } }, command: ['sh', '-c', 'ulimit -n 1024; exec app'] }],
  }) as unknown as PodObject;
  tuned.spec!['securityContext'] = { sysctls: [{ name: 'net.core.somaxconn', value: '1024' }, { name: 'kernel.threads-max', value: '100000' }] };
  tuned.metadata.annotations = { ...tuned.metadata.annotations, 'ulimits.noderesource.dev/container.app': '[{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 4096}]' };
  return [realistic, tuned];
}

describe('the audit engine', () => {
  const engine = createEngine();
  const compiled = engine.compile(POLICIES, ['kube-system', 'kube-node-lease', 'cg-system']);

  it('announces the generations it compiled', () => {
    expect([...compiled.generations]).toEqual([['gomaxprocs-deny', 1], ['ulimits-warn', 3], ['sysctls-audit', 1], ['other-team', 1]]);
  });

  it('a slimmed pod evaluates exactly as the full pod', () => {
    for (const pod of pods()) {
      const full = engine.evaluate(compiled, structuredClone(pod), { team: 'shop' }, []);
      const slim = structuredClone(pod);
      slimPod(slim);
      expect(slim.spec?.['volumes']).toBeUndefined();
      expect(slim.metadata.managedFields).toBeUndefined();
      expect(engine.evaluate(compiled, slim, { team: 'shop' }, [])).toEqual(full);
      expect(full.findings.length).toBeGreaterThan(0);
    }
  });

  it('gives the hand-written rule ids, each with the policy that sets its enforcement first', () => {
    const tuned = pods()[1]!;
    const result = engine.evaluate(compiled, tuned, { team: 'shop' }, []);
    expect([...result.matched].sort()).toEqual(['gomaxprocs-deny', 'sysctls-audit', 'ulimits-warn']);
    const ids = result.findings.map((f) => `${f.rule}:${f.enforcement}:${f.policies[0] ?? ''}`).sort();
    expect(ids).toContain('gomaxprocs/above-cpu-limit:Deny:gomaxprocs-deny');
    expect(ids).toContain('sysctls/not-namespaced:Audit:sysctls-audit');
    expect(ids).toContain('sysctls/below-minimum:Audit:sysctls-audit');
    expect(ids.some((id) => id.startsWith('ulimits/nofile-below-floor:Warn:ulimits-warn'))).toBe(true);
  });

  it('matches nothing in an excluded namespace', () => {
    const pod = pods()[1]!;
    pod.metadata.namespace = 'cg-system';
    expect(engine.evaluate(compiled, pod, { team: 'shop' }, [])).toEqual({ matched: [], findings: [] });
  });
});

describe('WriteBudget', () => {
  it('lets a burst through at once, then paces at the rate', async () => {
    const budget = new WriteBudget(20, 5);
    const started = performance.now();
    for (let i = 0; i < 5; i++) await budget.take();
    expect(performance.now() - started).toBeLessThan(20);
    for (let i = 0; i < 4; i++) await budget.take();
    // Four more at 20 per second: about 200 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(180);
  });
});
