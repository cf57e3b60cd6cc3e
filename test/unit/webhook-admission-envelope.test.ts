// What reaches the policy engine and what never can be blocked, with an engine that denies everything:
// unregistered kinds, */status, DELETE, objects being deleted and excluded namespaces are allowed without
// evaluation; ephemeral containers only ever warn; denials carry message and causes.
import { describe, expect, it } from 'vitest';
import { createAdmit, type EvaluationInput, type PolicyEvaluation } from '../../src/webhook/admission.ts';
import { parseAdmissionReview, type AdmissionRequest } from '../../src/webhook/review.ts';
import type { AdmissionDecision } from '../../src/webhook/server.ts';
import { admissionReview, podObject, type ReviewOptions } from './webhook-fixtures.ts';

const denyEverything: PolicyEvaluation = {
  denials: [{ rule: 'gomaxprocs-above-limit', container: 'app', message: 'container app: GOMAXPROCS=16 is above limits.cpu 2; set GOMAXPROCS=2', field: 'spec.containers[0].env[0].value' }],
  warnings: ['ulimit-nofile-undeclared: declare nofile'],
  findings: [{ rule: 'gomaxprocs-above-limit', enforcement: 'Deny' }],
};

function setup() {
  const seen: EvaluationInput[] = [];
  const admit = createAdmit({
    evaluate: (input) => { seen.push(input); return denyEverything; },
    excludedNamespaces: ['kube-system', 'kube-node-lease', 'concurrency-guard'],
  });
  const decide = (options: ReviewOptions): AdmissionDecision => {
    const parsed = parseAdmissionReview(admissionReview(options));
    if (!parsed.ok) throw new Error(parsed.message);
    return admit(parsed.request) as AdmissionDecision;
  };
  return { seen, decide, admit };
}

const apps = (resource: string, kind: string): Pick<ReviewOptions, 'kind' | 'resource'> => ({
  kind: { group: 'apps', version: 'v1', kind }, resource: { group: 'apps', version: 'v1', resource },
});

describe('admission envelope', () => {
  it('evaluates a Pod CREATE and denies with message, causes and the warnings', () => {
    const { seen, decide } = setup();
    const decision = decide({});
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ kind: 'Pod', operation: 'CREATE', subResource: '', namespace: 'shop' });
    expect(decision).toEqual({
      allowed: false,
      message: denyEverything.denials[0]!.message,
      causes: [{ reason: 'gomaxprocs-above-limit', message: denyEverything.denials[0]!.message, field: 'spec.containers[0].env[0].value' }],
      warnings: ['ulimit-nofile-undeclared: declare nofile'],
      findings: denyEverything.findings,
    });
  });

  it.each([
    ['deployments', 'Deployment', 'CREATE'], ['deployments', 'Deployment', 'UPDATE'],
    ['statefulsets', 'StatefulSet', 'UPDATE'], ['daemonsets', 'DaemonSet', 'CREATE'], ['replicasets', 'ReplicaSet', 'CREATE'],
  ] as const)('evaluates apps/%s %s', (resource, kind, operation) => {
    const { seen, decide } = setup();
    expect(decide({ ...apps(resource, kind), operation, object: { kind, metadata: { name: 'w' } }, oldObject: operation === 'UPDATE' ? { kind, metadata: { name: 'w' } } : null }).allowed).toBe(false);
    expect(seen[0]).toMatchObject({ kind, operation });
    if (operation === 'UPDATE') expect(seen[0]!.oldObject).toBeDefined();
  });

  it('evaluates batch Jobs and CronJobs', () => {
    const { seen, decide } = setup();
    decide({ kind: { group: 'batch', version: 'v1', kind: 'Job' }, resource: { group: 'batch', version: 'v1', resource: 'jobs' }, object: { metadata: {} } });
    decide({ kind: { group: 'batch', version: 'v1', kind: 'CronJob' }, resource: { group: 'batch', version: 'v1', resource: 'cronjobs' }, operation: 'UPDATE', object: { metadata: {} } });
    expect(seen.map((s) => s.kind)).toEqual(['Job', 'CronJob']);
  });

  it('a resize is evaluated as an UPDATE of the pod and may be denied', () => {
    const { seen, decide } = setup();
    const pod = podObject({ containers: [{ name: 'app' }] });
    expect(decide({ subResource: 'resize', operation: 'UPDATE', object: pod, oldObject: pod }).allowed).toBe(false);
    expect(seen[0]).toMatchObject({ kind: 'Pod', operation: 'UPDATE', subResource: 'resize' });
  });

  it('an ephemeral-container update is evaluated but only ever warns (never blocks kubectl debug)', () => {
    const { decide } = setup();
    const pod = podObject({ containers: [{ name: 'app' }] });
    const decision = decide({ subResource: 'ephemeralcontainers', operation: 'UPDATE', object: pod, oldObject: pod });
    expect(decision.allowed).toBe(true);
    expect(decision.warnings).toEqual(['ulimit-nofile-undeclared: declare nofile', 'gomaxprocs-above-limit: container app: GOMAXPROCS=16 is above limits.cpu 2; set GOMAXPROCS=2']);
    for (const warning of decision.warnings!) expect(warning.length).toBeLessThanOrEqual(120);
  });

  it.each<[string, ReviewOptions]>([
    ['a kind we do not handle', { kind: { group: '', version: 'v1', kind: 'ConfigMap' }, resource: { group: '', version: 'v1', resource: 'configmaps' }, object: { metadata: {} } }],
    ['pods/status', { subResource: 'status', operation: 'UPDATE' }],
    ['deployments/status', { ...apps('deployments', 'Deployment'), subResource: 'status', operation: 'UPDATE', object: { metadata: {} } }],
    ['deployments/scale', { ...apps('deployments', 'Deployment'), subResource: 'scale', operation: 'UPDATE', object: { metadata: {} } }],
    ['a Pod UPDATE (not registered)', { operation: 'UPDATE' }],
    ['a Pod DELETE', { operation: 'DELETE', object: null, oldObject: podObject({ containers: [{ name: 'app' }] }) }],
    ['a Deployment being deleted', { ...apps('deployments', 'Deployment'), operation: 'UPDATE', object: { metadata: { name: 'w', deletionTimestamp: '2026-11-27T20:00:00Z' } } }],
    ['kube-system', { namespace: 'kube-system' }],
    ['kube-node-lease', { namespace: 'kube-node-lease' }],
    ['our own namespace', { namespace: 'concurrency-guard' }],
  ])('%s is allowed without evaluation', (_what, options) => {
    const { seen, decide } = setup();
    expect(decide(options)).toEqual({ allowed: true });
    expect(seen).toHaveLength(0);
  });

  it('lists several denials in one message kubectl prints, and bounds causes', () => {
    const many: PolicyEvaluation = {
      denials: Array.from({ length: 20 }, (_, i) => ({ rule: 'r', message: `finding ${i}` })), warnings: [], findings: [],
    };
    const admit = createAdmit({ evaluate: () => many, excludedNamespaces: [] });
    const parsed = parseAdmissionReview(admissionReview()) as { ok: true; request: AdmissionRequest };
    const decision = admit(parsed.request) as AdmissionDecision;
    expect(decision.message).toMatch(/^\(1\) finding 0; \(2\) finding 1; /);
    expect(decision.message).toContain('(20) finding 19');
    expect(decision.causes).toHaveLength(16);
  });
});
