// Policy Ready from the webhook replicas' Leases, and the status the controller wants to write.
import { describe, expect, it } from 'vitest';
import type { ConcurrencyPolicy } from '../../src/api/index.ts';
import { desiredPolicyStatus, readyCondition, replicaStates, SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL } from '../../src/controllers/index.ts';
import type { WebhookLease } from '../../src/controllers/policy-readiness.ts';
import * as webhookLease from '../../src/webhook/lease.ts';

const NOW = Date.parse('2026-11-27T12:00:00Z');

function lease(name: string, served: Record<string, number> | string, renewedSecondsAgo = 5, durationSeconds = 60): WebhookLease {
  return {
    metadata: { name, annotations: { [SERVED_GENERATIONS_ANNOTATION]: typeof served === 'string' ? served : JSON.stringify(served) } },
    spec: { holderIdentity: name, leaseDurationSeconds: durationSeconds, renewTime: new Date(NOW - renewedSecondsAgo * 1000).toISOString().replace('Z', '000Z') },
  };
}

function policy(generation: number, status?: ConcurrencyPolicy['status']): ConcurrencyPolicy {
  return { apiVersion: 'concurrencyguard.io/v1alpha1', kind: 'ConcurrencyPolicy', metadata: { name: 'p', uid: 'u1', generation }, spec: {}, ...(status ? { status } : {}) };
}

describe('the webhook Lease format', () => {
  it('is the one src/webhook writes', () => {
    expect(SERVED_GENERATIONS_ANNOTATION).toBe(webhookLease.SERVED_GENERATIONS_ANNOTATION);
    expect(WEBHOOK_LEASE_LABEL).toBe(webhookLease.WEBHOOK_LEASE_LABEL);
    expect(SERVED_GENERATIONS_ANNOTATION).toBe('concurrencyguard.io/served-policy-generations');
  });
});

describe('readyCondition', () => {
  it('is False with NoWebhookReplicas when no Lease is live', () => {
    const { live } = replicaStates([lease('concurrency-guard-webhook-a', { p: 3 }, 61)], NOW);
    expect(live).toEqual([]);
    const c = readyCondition('p', 3, live, 'cg');
    expect([c.status, c.reason]).toEqual(['False', 'NoWebhookReplicas']);
    expect(c.message).toContain('namespace cg');
  });

  it('names the replica that serves an older generation, and the one that serves none', () => {
    const { live, nextExpiry } = replicaStates([
      lease('concurrency-guard-webhook-a', { p: 3 }),
      lease('concurrency-guard-webhook-b', { p: 2 }, 10),
      lease('concurrency-guard-webhook-c', { other: 1 }),
    ], NOW);
    expect(nextExpiry).toBe(NOW + 50_000);
    const c = readyCondition('p', 3, live, 'cg');
    expect([c.status, c.reason, c.observedGeneration]).toEqual(['False', 'WebhookNotServing', 3]);
    expect(c.message).toBe('2 of 3 webhook replicas do not enforce generation 3 yet: concurrency-guard-webhook-b serves generation 2; concurrency-guard-webhook-c does not serve it. Replicas pick up a new generation within seconds; if this persists, check the manager logs.');
  });

  it('treats an unreadable annotation as not serving', () => {
    const { live } = replicaStates([lease('concurrency-guard-webhook-a', '{not json')], NOW);
    expect(readyCondition('p', 1, live, 'cg').message).toContain('announces no readable generations');
  });

  it('is True when every live replica serves this generation (expired ones do not count)', () => {
    const { live } = replicaStates([lease('concurrency-guard-webhook-a', { p: 4 }), lease('concurrency-guard-webhook-b', { p: 4 }), lease('concurrency-guard-webhook-old', { p: 1 }, 120)], NOW);
    const c = readyCondition('p', 4, live, 'cg');
    expect([c.status, c.reason, c.message]).toEqual(['True', 'AllReplicasServing', 'All 2 webhook replicas enforce generation 4.']);
  });
});

describe('desiredPolicyStatus', () => {
  const leases = [lease('concurrency-guard-webhook-a', { p: 2 })];

  it('takes counts only from an audit of this generation', () => {
    const stale = desiredPolicyStatus(policy(2, { matchedPods: 7, violatingPods: 1 }), leases, { generation: 1, matched: 50, violating: 9, auditTime: '2026-11-27T11:00:00.000Z' }, 'cg', NOW);
    expect([stale.status.matchedPods, stale.status.violatingPods, stale.status.lastAuditTime]).toEqual([7, 1, undefined]);
    const fresh = desiredPolicyStatus(policy(2), leases, { generation: 2, matched: 50, violating: 9, auditTime: '2026-11-27T11:59:00.000Z' }, 'cg', NOW);
    expect(fresh.status).toMatchObject({ observedGeneration: 2, matchedPods: 50, violatingPods: 9, lastAuditTime: '2026-11-27T11:59:00.000Z' });
  });

  it('keeps lastTransitionTime while Ready does not change', () => {
    const first = desiredPolicyStatus(policy(2), leases, undefined, 'cg', NOW).status;
    const again = desiredPolicyStatus(policy(2, first), leases, undefined, 'cg', NOW + 10_000).status;
    expect(again.conditions?.[0]?.lastTransitionTime).toBe(new Date(NOW).toISOString());
    expect(again).toEqual(first);
  });
});
