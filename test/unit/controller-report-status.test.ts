// The controller's part of a report: findings bounded and ordered, suppressed no-op writes, and when a
// report has outlived its use.
import { describe, expect, it } from 'vitest';
import type { ConcurrencyReport } from '../../src/api/index.ts';
import type { EngineFinding } from '../../src/controllers/audit/engine.ts';
import {
  desiredAuditStatus, hasControllerFields, reportExpired, reportFindings, reportIsCurrent,
} from '../../src/controllers/audit/report-status.ts';

const NOW = new Date('2026-11-27T12:00:00Z');

function finding(rule: string, enforcement: EngineFinding['enforcement'], container = 'app'): EngineFinding {
  return { rule, enforcement, container, message: `${rule} message that is long enough to need clipping at sixty-four characters`, policies: ['strict', 'lenient'] };
}

function report(status: ConcurrencyReport['status'], created = '2026-11-27T11:00:00Z', nodeName = 'node-1'): ConcurrencyReport {
  return {
    apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyReport',
    metadata: { name: 'web-0', namespace: 'a', uid: 'r1', creationTimestamp: created },
    spec: { podName: 'web-0', podUID: 'p1', nodeName },
    ...(status ? { status } : {}),
  };
}

describe('reportFindings', () => {
  it('keeps the four strictest, clipped to the CRD bounds, and counts the rest', () => {
    const { findings, truncated } = reportFindings([
      finding('ulimits/nofile-undeclared', 'Audit'),
      finding('gomaxprocs/above-cpu-request', 'Warn'),
      finding('sysctls/not-namespaced', 'Deny', ''),
      finding('gomaxprocs/above-cpu-limit', 'Deny'),
      finding('ulimits/nofile-below-floor', 'Warn'),
      finding('gomaxprocs/not-positive-integer', 'Audit'),
    ]);
    expect(findings.map((f) => [f.rule, f.enforcement])).toEqual([
      ['gomaxprocs/above-cpu-limit', 'Deny'],
      ['sysctls/not-namespaced', 'Deny'],
      ['gomaxprocs/above-cpu-request', 'Warn'],
      ['ulimits/nofile-below-floor', 'Warn'],
    ]);
    expect(truncated).toBe(2);
    expect(findings[0]!.message).toHaveLength(64);
    expect(findings[0]!.policies).toEqual(['strict']);
    expect(findings[1]!.container).toBeUndefined();
  });
});

describe('desiredAuditStatus', () => {
  it('moves auditTime only when the findings change', () => {
    const first = desiredAuditStatus([finding('gomaxprocs/above-cpu-limit', 'Deny')], 1, undefined, NOW);
    expect(first.audit?.auditTime).toBe(NOW.toISOString());
    expect(first.conditions).toEqual([{ type: 'PolicyCompliant', status: 'False', reason: 'DenyFindings', message: '1 finding, first gomaxprocs/above-cpu-limit', lastTransitionTime: NOW.toISOString() }]);
    const later = new Date(NOW.getTime() + 3600_000);
    const same = desiredAuditStatus([finding('gomaxprocs/above-cpu-limit', 'Deny')], 1, report(first), later);
    expect(same).toEqual(first);
    expect(reportIsCurrent(report(first), same, 'node-1')).toBe(true);
    const changed = desiredAuditStatus([], 1, report(first), later);
    expect(changed.audit).toEqual({ auditTime: later.toISOString(), findings: [] });
    expect(changed.conditions?.[0]).toMatchObject({ status: 'True', reason: 'NoFindings', message: 'No finding from 1 matching policy', lastTransitionTime: later.toISOString() });
  });

  it('moves auditTime when a pod leaves every policy\'s match, so its TTL starts then', () => {
    const compliant = desiredAuditStatus([], 1, undefined, NOW);
    const later = new Date(NOW.getTime() + 60_000);
    const unmatched = desiredAuditStatus([], 0, report(compliant), later);
    expect(unmatched.audit?.auditTime).toBe(later.toISOString());
    expect(unmatched.conditions?.[0]).toMatchObject({ status: 'True', reason: 'NoMatchingPolicy', lastTransitionTime: NOW.toISOString() });
    expect(reportExpired(report(unmatched, '2026-01-01T00:00:00Z'), 'problems', false, 600_000, later.getTime() + 1_000)).toBe(false);
  });

  it('never carries the agent condition types it found on the report', () => {
    const agent = { type: 'FileDescriptorPressure', status: 'True' as const, reason: 'Critical', message: '97%', lastTransitionTime: NOW.toISOString() };
    const status = desiredAuditStatus([], 2, report({ conditions: [agent], summary: { level: 'Critical' } }), NOW);
    expect(status.conditions?.map((c) => c.type)).toEqual(['PolicyCompliant']);
    expect(Object.keys(status)).toEqual(['conditions', 'audit']);
  });

  it('a moved pod needs a write even with the same findings', () => {
    const status = desiredAuditStatus([], 1, undefined, NOW);
    expect(reportIsCurrent(report(status, undefined, 'node-1'), status, 'node-2')).toBe(false);
  });
});

describe('reportExpired', () => {
  const ttl = 600_000;
  const quiet = desiredAuditStatus([], 1, undefined, new Date(NOW.getTime() - ttl - 1));

  it('expires a quiet report with no finding at level OK once the TTL has passed', () => {
    expect(reportExpired(report(quiet, '2026-11-27T10:00:00Z'), 'problems', true, ttl, NOW.getTime())).toBe(true);
    expect(reportExpired(report(quiet, '2026-11-27T10:00:00Z'), 'problems', true, ttl + 2, NOW.getTime())).toBe(false);
  });

  it('keeps reports with a finding, a runtime level above OK, or a recent transition', () => {
    const withFinding = desiredAuditStatus([finding('gomaxprocs/above-cpu-limit', 'Audit')], 1, undefined, new Date(0));
    expect(reportExpired(report(withFinding, '2026-01-01T00:00:00Z'), 'problems', true, ttl, NOW.getTime())).toBe(false);
    expect(reportExpired(report({ ...quiet, summary: { level: 'Warning' } }, '2026-01-01T00:00:00Z'), 'problems', true, ttl, NOW.getTime())).toBe(false);
    const recent = { type: 'ThreadPressure', status: 'False' as const, reason: 'OK', message: '', lastTransitionTime: new Date(NOW.getTime() - 60_000).toISOString() };
    expect(reportExpired(report({ ...quiet, conditions: [...quiet.conditions!, recent] }, '2026-01-01T00:00:00Z'), 'problems', true, ttl, NOW.getTime())).toBe(false);
  });

  it('under --reports=all keeps matched pods\' reports however quiet', () => {
    expect(reportExpired(report(quiet, '2026-01-01T00:00:00Z'), 'all', true, ttl, NOW.getTime())).toBe(false);
    expect(reportExpired(report(quiet, '2026-01-01T00:00:00Z'), 'all', false, ttl, NOW.getTime())).toBe(true);
  });

  it('knows which reports carry controller fields', () => {
    expect(hasControllerFields(report({ summary: { level: 'OK' } }))).toBe(false);
    expect(hasControllerFields(report(quiet))).toBe(true);
  });
});
