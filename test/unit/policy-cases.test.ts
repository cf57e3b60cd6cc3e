// Runs the rule table of policy-cases.ts through the admission decision and checks each case's findings
// (`rule:enforcement`, hand-written), the table's size, and properties every fix must have.
import { applyPatch } from 'rfc6902';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, compilePolicies, decide } from '../../src/policy/index.ts';
import type { Finding } from '../../src/policy/index.ts';
import { CASES, DEFAULT_POLICY, policyObjects } from './policy-cases.ts';
import type { PolicyCase } from './policy-cases.ts';

export function runCase(c: PolicyCase, object: unknown = c.object): Finding[] {
  const compiled = compilePolicies(policyObjects(c.policies ?? [DEFAULT_POLICY]), c.versions ? { versions: c.versions } : {});
  const kind = (object as { kind: string }).kind;
  const decision = decide(compiled, {
    kind,
    operation: c.admission?.operation ?? 'CREATE',
    subResource: c.admission?.subResource,
    object,
    oldObject: c.admission?.oldObject,
    namespaceLabels: c.namespaceLabels,
    limitRanges: c.limitRanges,
  });
  expect(decision.allowed).toBe(!decision.findings.some((f) => f.enforcement === 'Deny'));
  return decision.findings;
}

const summary = (findings: readonly Finding[]): string[] => findings.map((f) => `${f.rule}:${f.enforcement}`).sort();

describe('the rule table', () => {
  it('has at least 80 cases, 20 of them at a boundary, with unique names', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(80);
    expect(CASES.filter((c) => c.boundary).length).toBeGreaterThanOrEqual(20);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it('expects every rule of the catalogue somewhere', () => {
    const expected = new Set(CASES.flatMap((c) => c.expect.map((e) => e.split(':')[0])));
    expect(RULE_IDS.filter((id) => !expected.has(id))).toEqual([]);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(summary(runCase(c))).toEqual([...c.expect].sort());
  });
});

describe('fixes', () => {
  const withFix = CASES.filter((c) => runCase(c).some((f) => f.patch));

  it('exist for a good share of the table', () => {
    expect(withFix.length).toBeGreaterThanOrEqual(25);
  });

  it.each(withFix.map((c) => [c.name, c] as const))('applying the fixes of "%s" (re-evaluating between rounds, as check --fix does) leaves only findings that had none', (_name, c) => {
    const before = runCase(c);
    const unfixable = new Set(before.filter((f) => !f.patch).map((f) => f.key));
    const fixed = structuredClone(c.object);
    let findings = before;
    for (let round = 0; round < 4 && findings.some((f) => f.patch); round++) {
      for (const finding of findings) {
        if (!finding.patch) continue;
        const results = applyPatch(fixed, finding.patch);
        expect(results.every((r) => r === null), `${finding.rule}: ${JSON.stringify(results)}`).toBe(true);
      }
      findings = runCase(c, fixed);
    }
    expect(summary(findings.filter((f) => !unfixable.has(f.key)))).toEqual([]);
  });

  it('never offers the resourceFieldRef fix to a container without its own CPU limit', () => {
    let checked = 0;
    for (const c of CASES) {
      for (const finding of runCase(c)) {
        for (const op of finding.patch ?? []) {
          if (!JSON.stringify('value' in op ? op.value : null).includes('resourceFieldRef')) continue;
          checked++;
          const containerPointer = /^(.*\/(?:containers|initContainers|ephemeralContainers)\/\d+)/.exec(op.path)?.[1];
          expect(containerPointer, op.path).toBeDefined();
          let node: unknown = c.object;
          for (const segment of (containerPointer as string).split('/').slice(1)) node = (node as Record<string, unknown>)[segment];
          const ownLimit = (node as { resources?: { limits?: { cpu?: unknown } } }).resources?.limits?.cpu;
          expect(ownLimit, `${c.name}: ${finding.rule}`).toBeDefined();
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('warnings are at most 120 characters and start with the rule id', () => {
    const compiled = compilePolicies(policyObjects([DEFAULT_POLICY]));
    for (const c of CASES) {
      const decision = decide(compiled, { kind: (c.object as { kind: string }).kind, operation: 'CREATE', object: c.object });
      for (const warning of decision.warnings) {
        expect(warning.length).toBeLessThanOrEqual(120);
        expect(warning).toMatch(/^[a-z]+\/[a-z0-9-]+/);
      }
    }
  });
});
