// Property: 100,000 generated pod specs — well-formed, odd and malformed — go through the admission
// decision without a throw; every finding is well-formed; every patch applies cleanly to its object; and
// the decision is allowed exactly when no finding denies.
import type { V1LimitRange } from '@kubernetes/client-node';
import fc from 'fast-check';
import { applyPatch } from 'rfc6902';
import { describe, expect, it } from 'vitest';
import type { ConcurrencyPolicySpec } from '../../src/api/index.ts';
import { compilePolicies, decide } from '../../src/policy/index.ts';
import { policyObjects } from './policy-cases.ts';

const RUNS = 100_000;

const quantity = fc.oneof(
  fc.constantFrom('1', '2', '500m', '1000m', '1001m', '0', '1.5', '2Gi', '1e3', '0.001', '1m', '', '-1', 'abc', '.', '+', '1e-3', '01'),
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -5, max: 64 }),
  fc.double({ noNaN: false }),
);

const envValue = fc.oneof(
  fc.constantFrom('0', '1', '2', '8', '64', '-1', '+2', 'abc', '', '$(CPUS)', '$$(CPUS)', '$(', '$(GOMAXPROCS)', '$', 'containermaxprocs=0', 'x=1,containermaxprocs=0'),
  fc.string({ maxLength: 8 }),
);

const envEntry = fc.oneof(
  fc.record({ name: fc.constantFrom('GOMAXPROCS', 'CPUS', 'GODEBUG', 'NOFILE', 'N'), value: envValue }),
  fc.record({
    name: fc.constantFrom('GOMAXPROCS', 'CPUS'),
    valueFrom: fc.oneof(
      fc.record({ resourceFieldRef: fc.record({ resource: fc.constantFrom('limits.cpu', 'requests.cpu', 'limits.memory', 'bogus'), divisor: fc.option(quantity, { nil: undefined }), containerName: fc.option(fc.constantFrom('app', 'side', 'missing'), { nil: undefined }) }, { requiredKeys: ['resource'] }) }),
      fc.record({ configMapKeyRef: fc.record({ name: fc.constant('c'), key: fc.constant('k') }) }),
      fc.record({ fieldRef: fc.record({ fieldPath: fc.constantFrom('metadata.name', "metadata.labels['a']", 'status.podIP', 'x') }) }),
      fc.anything({ maxDepth: 1 }),
    ),
  }),
  fc.anything({ maxDepth: 1 }),
);

const script = fc.oneof(
  fc.constantFrom(
    'ulimit -n 65536; exec app', 'ulimit -n 1048576 && exec app', 'set -e; ulimit -Hn 2000000', 'ulimit -u 4096', 'ulimit -p 10',
    'ulimit -n ${NOFILE:-65536}', 'ulimit -n $NOFILE -u 3', '(ulimit -n 1)', 'if true; then ulimit -n 5; fi', "ulimit -n '", 'ulimit -n "$(cat f)"',
    'N=1; ulimit -Sn $N', 'ulimit', 'ulimit -a', 'ulimit -n unlimited', 'ulimit -n hard', '`ulimit -n 3`', 'ulimit -n 5 | cat', 'ulimit -n 5 &',
  ),
  fc.string({ maxLength: 30 }).map((s) => `ulimit ${s}`),
  fc.string({ maxLength: 30 }),
);

const command = fc.oneof(
  fc.tuple(fc.constantFrom('sh', '/bin/sh', 'bash', 'dash', 'ash', 'busybox', 'env'), fc.constantFrom('-c', '-ec', '-e', '-o', '--'), script).map((parts) => [...parts]),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.anything({ maxDepth: 1 }),
);

const nriValue = fc.oneof(
  fc.constantFrom('- type: RLIMIT_NOFILE\n  soft: 65536\n  hard: 65536\n', '- type: nofile\n  soft: 1024\n', '- type: nproc\n  hard: 5\n', 'nofile: 1', '- type: x\n', '[', '- soft: -1\n', ''),
  fc.string({ maxLength: 20 }),
);

const container = fc.record(
  {
    name: fc.oneof(fc.constantFrom('app', 'side'), fc.string({ maxLength: 4 })),
    image: fc.constantFrom('alpine:3', 'debian:12', 'ubi9', 'scratch', ''),
    env: fc.oneof(fc.array(envEntry, { maxLength: 5 }), fc.anything({ maxDepth: 1 })),
    envFrom: fc.array(fc.record({ prefix: fc.option(fc.constantFrom('', 'GO', 'APP_'), { nil: undefined }), configMapRef: fc.constant({ name: 'c' }) }), { maxLength: 1 }),
    command,
    args: fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }),
    resources: fc.oneof(
      fc.record({ limits: fc.record({ cpu: quantity }, { requiredKeys: [] }), requests: fc.record({ cpu: quantity }, { requiredKeys: [] }) }, { requiredKeys: [] }),
      fc.anything({ maxDepth: 1 }),
    ),
    securityContext: fc.record(
      {
        runAsUser: fc.oneof(fc.constantFrom(0, 1000, 65532), fc.anything({ maxDepth: 0 })),
        runAsNonRoot: fc.boolean(),
        capabilities: fc.record({ add: fc.array(fc.constantFrom('SYS_RESOURCE', 'CAP_SYS_RESOURCE', 'NET_ADMIN')), drop: fc.array(fc.constantFrom('ALL', 'SYS_RESOURCE')) }, { requiredKeys: [] }),
        ulimits: fc.array(fc.record({ name: fc.constantFrom('nofile', 'nproc', 'x'), soft: fc.integer({ min: -1, max: 2_000_000 }), hard: fc.integer({ min: -1, max: 2_000_000 }) }, { requiredKeys: [] }), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['name'] },
);

const podSpec = fc.record(
  {
    containers: fc.oneof(fc.array(container, { minLength: 1, maxLength: 3 }), fc.anything({ maxDepth: 1 })),
    initContainers: fc.array(container, { maxLength: 1 }),
    ephemeralContainers: fc.array(container, { maxLength: 1 }),
    hostNetwork: fc.boolean(),
    hostIPC: fc.boolean(),
    hostUsers: fc.boolean(),
    resources: fc.record({ limits: fc.record({ cpu: quantity }) }),
    securityContext: fc.record(
      {
        runAsUser: fc.constantFrom(0, 1000),
        sysctls: fc.oneof(
          fc.array(fc.record({ name: fc.oneof(fc.constantFrom('net.core.somaxconn', 'net/core/somaxconn', 'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.tcp_syncookies', 'fs.mqueue.msg_max', 'fs.file-max', 'kernel.shm_rmid_forced', 'vm.swappiness', 'net.core.netdev_max_backlog'), fc.string({ maxLength: 10 })), value: fc.oneof(fc.constantFrom('0', '1', '128', '4096', '65536', 'x'), fc.anything({ maxDepth: 0 })) }), { maxLength: 4 }),
          fc.anything({ maxDepth: 1 }),
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['containers'] },
);

const metadata = fc.record(
  {
    name: fc.constant('p'),
    namespace: fc.constantFrom('default', 'kube-system', 'shop'),
    labels: fc.oneof(fc.dictionary(fc.constantFrom('app', 'tier', 'legacy'), fc.constantFrom('a', 'prod', 'true')), fc.anything({ maxDepth: 1 })),
    annotations: fc.oneof(
      fc.dictionary(fc.constantFrom('ulimits.noderesource.dev/container.app', 'ulimits.nri.containerd.io/container.side', 'ulimits.noderesource.dev/container.ghost', 'other'), nriValue),
      fc.anything({ maxDepth: 1 }),
    ),
    ownerReferences: fc.array(fc.record({ kind: fc.constant('ReplicaSet'), controller: fc.boolean() }), { maxLength: 1 }),
    deletionTimestamp: fc.option(fc.constant('2026-01-01T00:00:00Z'), { freq: 20, nil: undefined }),
  },
  { requiredKeys: ['name'] },
);

const admitted = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('Pod'), metadata, spec: fc.oneof({ weight: 9, arbitrary: podSpec }, { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('Deployment'), metadata, spec: fc.record({ template: fc.record({ metadata, spec: podSpec }) }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('CronJob', 'Job', 'StatefulSet'), metadata, spec: fc.anything({ maxDepth: 2 }) }) },
);

const limitRanges = fc.option(
  fc.array(fc.record({ spec: fc.oneof(fc.record({ limits: fc.array(fc.record({ type: fc.constantFrom('Container', 'Pod'), default: fc.record({ cpu: quantity }), defaultRequest: fc.record({ cpu: quantity }) }, { requiredKeys: [] }), { maxLength: 2 }) }), fc.anything({ maxDepth: 1 })) }), { maxLength: 2 }),
  { nil: undefined },
);

const POLICIES: ConcurrencyPolicySpec[] = [
  { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 0 }, ulimits: { nofile: { minSoft: 65536, minPerCPU: 1024 }, nproc: { minPerCPU: 512 }, onUndeclared: 'Warn' }, sysctls: { allowedUnsafe: ['net.core.*', 'fs.mqueue.*'], minimums: { 'net.core.somaxconn': 4096 } } },
  { enforcement: 'Warn', match: { podSelector: { matchExpressions: [{ key: 'legacy', operator: 'DoesNotExist' }] } }, gomaxprocs: { maxOverCPULimit: 2 } },
  { enforcement: 'Audit', match: { namespaceSelector: { matchLabels: { tier: 'prod' } } }, ulimits: { onUndeclared: 'Ignore' }, sysctls: {} },
];

describe('the engine on generated pod specs', () => {
  const compiled = compilePolicies(policyObjects(POLICIES));
  it(`decides ${RUNS.toLocaleString('en')} generated objects without a throw, with well-formed findings and patches that apply`, () => {
    let findings = 0;
    let patched = 0;
    fc.assert(
      fc.property(admitted, fc.constantFrom<'CREATE' | 'UPDATE'>('CREATE', 'UPDATE'), fc.constantFrom('', 'resize', 'ephemeralcontainers'), limitRanges, (object, operation, subResource, ranges) => {
        const decision = decide(compiled, {
          kind: object.kind, operation, subResource, object, oldObject: operation === 'UPDATE' ? object : undefined, namespaceLabels: { tier: 'prod' },
          ...(ranges ? { limitRanges: ranges as unknown as V1LimitRange[] } : {}),
        });
        if (decision.allowed !== !decision.findings.some((f) => f.enforcement === 'Deny')) return false;
        for (const warning of decision.warnings) if (warning.length > 120) return false;
        for (const finding of decision.findings) {
          findings++;
          if (!/^(gomaxprocs|ulimits|sysctls)\/[a-z0-9-]+$/.test(finding.rule) || finding.message.length === 0 || finding.fix.length === 0) return false;
          if (finding.patch) {
            patched++;
            const copy: unknown = structuredClone(object);
            if (applyPatch(copy, finding.patch).some((r) => r !== null)) return false;
          }
        }
        return true;
      }),
      { numRuns: RUNS, seed: 20261127 },
    );
    // The generator must reach the rules, not only the malformed paths.
    expect(findings).toBeGreaterThan(RUNS / 2);
    expect(patched).toBeGreaterThan(RUNS / 20);
  }, 120_000);
});
