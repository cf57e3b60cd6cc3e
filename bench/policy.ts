// bench/policy — the policy engine alone: decide() on the realistic 3-container pod of the webhook bench
// (≈ 4.3 KB as the API server sends it) against 20 compiled policies, the per-request cost the webhook
// pays. Budget: well under 50 µs per evaluation (DESIGN.md: the webhook must keep ≥ 90% of a bare
// fastify server's ~6.2k requests/s on one core, i.e. ≤ ~16 µs of the ~160 µs per request... in practice
// anything below 50 µs). Also measured: a pod with violations (findings and patches built), and compile.
//
// Usage: node bench/policy.ts [--seconds 3]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ConcurrencyPolicy, ConcurrencyPolicySpec } from '../src/api/index.ts';
import { compilePolicies, decide } from '../src/policy/index.ts';
import type { AdmissionInput } from '../src/policy/index.ts';
import { REALISTIC_CONTAINERS, podObject } from '../test/unit/webhook-fixtures.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);

/** Twenty policies as a cluster might have them: most match the pod, with different parameters. */
function twentyPolicies(): ConcurrencyPolicy[] {
  const specs: ConcurrencyPolicySpec[] = [];
  for (let i = 0; i < 20; i++) {
    const spec: ConcurrencyPolicySpec = {
      enforcement: (['Deny', 'Warn', 'Audit'] as const)[i % 3],
      match: {
        namespaceSelector: i % 4 === 0 ? { matchLabels: { tier: 'prod' } } : i % 4 === 1 ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['shop', 'payments'] }] } : {},
        podSelector: i % 5 === 0 ? { matchExpressions: [{ key: 'app', operator: 'Exists' }] } : {},
        exclude: { namespaces: [`legacy-${i}`], ...(i % 2 === 0 ? { podSelector: { matchLabels: { 'concurrency-guard.io/skip': 'true' } } } : {}) },
      },
      gomaxprocs: { maxOverCPULimit: i % 3 },
    };
    if (i % 2 === 0) spec.ulimits = { nofile: { minSoft: 1024 * (1 + (i % 4)) }, onUndeclared: i % 4 === 0 ? 'Warn' : 'Ignore' };
    if (i % 3 === 0) spec.sysctls = { allowedUnsafe: ['net.core.somaxconn', `net.ipv4.tcp_max_syn_backlog`, 'fs.mqueue.*'], minimums: { 'net.core.somaxconn': 1024 * (1 + (i % 2)) } };
    specs.push(spec);
  }
  return specs.map((spec, i) => ({ apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy', metadata: { name: `policy-${i}`, generation: 1 }, spec }));
}

function measure(label: string, input: AdmissionInput, compiled: ReturnType<typeof compilePolicies>): number {
  const deadline = performance.now() + 500;
  while (performance.now() < deadline) decide(compiled, input); // warm-up: let the JIT settle
  let n = 0;
  let findings = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) findings = decide(compiled, input).findings.length;
    n += 100;
  }
  const elapsed = (performance.now() - start) / 1000;
  const rate = n / elapsed;
  console.log(`${label.padEnd(44)} ${Math.round(rate).toLocaleString('en').padStart(10)} evaluations/s  ${(1e6 / rate).toFixed(2).padStart(7)} µs/evaluation  (${findings} findings)`);
  return rate;
}

const policies = twentyPolicies();
let compiled = compilePolicies(policies);
const compileStart = performance.now();
for (let i = 0; i < 1000; i++) compiled = compilePolicies(policies);
const compileMicros = ((performance.now() - compileStart) / 1000) * 1000;

const namespaceLabels = { tier: 'prod', 'kubernetes.io/metadata.name': 'shop' };
const realistic = podObject({ containers: REALISTIC_CONTAINERS });
const violating = podObject({
  containers: REALISTIC_CONTAINERS.map((c, i) => (i === 0 ? { ...c, env: [{ name: 'GOMAXPROCS', value: '16' }, ...(c.env ?? []).slice(1)] } : c)),
});

console.log(`policy bench: node ${process.version}, 20 policies, 3-container pod, ${seconds} s per case`);
console.log(`compilePolicies(20 policies)                 ${compileMicros.toFixed(1)} µs`);
const clean = measure('realistic pod (as the API server sends it)', { kind: 'Pod', operation: 'CREATE', object: realistic, namespaceLabels }, compiled);
measure('same pod with a GOMAXPROCS violation', { kind: 'Pod', operation: 'CREATE', object: violating, namespaceLabels }, compiled);
measure('UPDATE of that pod (old object evaluated)', { kind: 'Pod', operation: 'UPDATE', object: violating, oldObject: violating, namespaceLabels }, compiled);
const budget = 1e6 / 50;
console.log(`budget 50 µs = ${budget.toLocaleString('en')} evaluations/s: realistic pod at ${(clean / budget).toFixed(1)}× the budget rate`);
