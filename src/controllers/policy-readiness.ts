// Whether a policy is enforced: Ready only when every live webhook replica announces, on its own Lease,
// that it serves this generation of the policy (DESIGN.md "Webhook"). The Lease format is the webhook's
// (src/webhook/lease.ts); this layer may not import src/webhook, so the two names are repeated here and
// test/unit/controller-policy-status.test.ts pins them to the webhook's constants' values.
import { SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL, type Condition } from '../api/index.ts';
import type { KubeObject } from '../kube/index.ts';

export { SERVED_GENERATIONS_ANNOTATION, WEBHOOK_LEASE_LABEL };

export interface WebhookLease extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

export interface ReplicaState {
  lease: string;
  /** Milliseconds since the epoch after which the replica no longer counts. */
  expiresAt: number;
  /** undefined when the annotation is missing or unreadable. */
  served: Readonly<Record<string, number>> | undefined;
}

export function replicaStates(leases: readonly WebhookLease[], now: number): { live: ReplicaState[]; nextExpiry: number | undefined } {
  const live: ReplicaState[] = [];
  let nextExpiry: number | undefined;
  for (const lease of leases) {
    const renewed = Date.parse(lease.spec?.renewTime ?? '');
    if (!Number.isFinite(renewed)) continue;
    const expiresAt = renewed + (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (expiresAt <= now) continue;
    nextExpiry = nextExpiry === undefined ? expiresAt : Math.min(nextExpiry, expiresAt);
    let served: Record<string, number> | undefined;
    try {
      const parsed = JSON.parse(lease.metadata.annotations?.[SERVED_GENERATIONS_ANNOTATION] ?? '') as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) served = parsed as Record<string, number>;
    } catch {
      served = undefined;
    }
    live.push({ lease: lease.metadata.name ?? '', expiresAt, served });
  }
  live.sort((a, b) => (a.lease < b.lease ? -1 : a.lease > b.lease ? 1 : 0));
  return { live, nextExpiry };
}

export type ReadyReason = 'AllReplicasServing' | 'NoWebhookReplicas' | 'WebhookNotServing';

/** The Ready condition (without lastTransitionTime) for this generation of the policy. */
export function readyCondition(
  policyName: string, generation: number, replicas: readonly ReplicaState[], ownNamespace: string,
): Omit<Condition, 'lastTransitionTime'> & { reason: ReadyReason } {
  if (replicas.length === 0) {
    return {
      type: 'Ready', status: 'False', observedGeneration: generation, reason: 'NoWebhookReplicas',
      message: `No webhook replica has renewed its Lease in namespace ${ownNamespace} within the lease duration, so nothing enforces this policy at admission. Check that the concurrency-guard manager pods are running and can write Leases.`,
    };
  }
  const behind = replicas.filter((r) => r.served?.[policyName] !== generation);
  if (behind.length === 0) {
    return {
      type: 'Ready', status: 'True', observedGeneration: generation, reason: 'AllReplicasServing',
      message: replicas.length === 1 ? `The one webhook replica enforces generation ${generation}.` : `All ${replicas.length} webhook replicas enforce generation ${generation}.`,
    };
  }
  const described = behind.slice(0, 5).map((r) => {
    if (!r.served) return `${r.lease} announces no readable generations`;
    const served = r.served[policyName];
    return served === undefined ? `${r.lease} does not serve it` : `${r.lease} serves generation ${served}`;
  });
  const more = behind.length > 5 ? ` and ${behind.length - 5} more` : '';
  const neverServed = behind.every((r) => r.served && r.served[policyName] === undefined);
  const hint = neverServed
    ? 'If this persists, the webhook could not compile the policy: check the manager logs.'
    : 'Replicas pick up a new generation within seconds; if this persists, check the manager logs.';
  return {
    type: 'Ready', status: 'False', observedGeneration: generation, reason: 'WebhookNotServing',
    message: `${behind.length} of ${replicas.length} webhook replicas do not enforce generation ${generation} yet: ${described.join('; ')}${more}. ${hint}`,
  };
}
