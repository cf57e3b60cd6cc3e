// The ValidatingWebhookConfiguration we render: DESIGN.md's registrations (and nothing on */status),
// Ignore and 3 s by default, no caBundle unless given, our namespaces and service accounts skipped.
import { describe, expect, it } from 'vitest';
import { renderValidatingWebhookConfiguration, WEBHOOK_NAME } from '../../src/webhook/configuration.ts';

interface Rendered {
  metadata: { name: string };
  webhooks: {
    name: string;
    clientConfig: { service?: { namespace: string; name: string; path: string; port: number }; url?: string; caBundle?: string };
    rules: { apiGroups: string[]; operations: string[]; resources: string[] }[];
    failurePolicy: string;
    timeoutSeconds: number;
    sideEffects: string;
    admissionReviewVersions: string[];
    namespaceSelector: { matchExpressions: { key: string; operator: string; values: string[] }[] };
    matchConditions: { name: string; expression: string }[];
  }[];
}

describe('renderValidatingWebhookConfiguration', () => {
  const rendered = renderValidatingWebhookConfiguration({
    namespace: 'concurrency-guard', service: { name: 'concurrency-guard-webhook' }, serviceAccounts: ['concurrency-guard'],
  }) as unknown as Rendered;
  const webhook = rendered.webhooks[0]!;

  it('registers exactly the operations of DESIGN.md, no */status', () => {
    const registered = webhook.rules.flatMap((r) => r.resources.map((res) => `${r.apiGroups[0]}/${res}:${[...r.operations].sort().join(',')}`)).sort();
    expect(registered).toEqual([
      '/pods/ephemeralcontainers:UPDATE',
      '/pods/resize:UPDATE',
      '/pods:CREATE',
      'apps/daemonsets:CREATE,UPDATE',
      'apps/deployments:CREATE,UPDATE',
      'apps/replicasets:CREATE,UPDATE',
      'apps/statefulsets:CREATE,UPDATE',
      'batch/cronjobs:CREATE,UPDATE',
      'batch/jobs:CREATE,UPDATE',
    ]);
    expect(registered.join(' ')).not.toContain('status');
  });

  it('defaults to failurePolicy Ignore, timeoutSeconds 3, v1 reviews, no side effects, no caBundle', () => {
    expect(rendered.metadata.name).toBe('concurrency-guard');
    expect(webhook.name).toBe(WEBHOOK_NAME);
    expect(webhook.failurePolicy).toBe('Ignore');
    expect(webhook.timeoutSeconds).toBe(3);
    expect(webhook.admissionReviewVersions).toEqual(['v1']);
    expect(webhook.sideEffects).toBe('None');
    expect(webhook.clientConfig).toEqual({ service: { namespace: 'concurrency-guard', name: 'concurrency-guard-webhook', path: '/validate', port: 443 } });
  });

  it('never sends kube-system, kube-node-lease or its own namespace, nor its own service accounts', () => {
    expect(webhook.namespaceSelector.matchExpressions).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-node-lease', 'concurrency-guard'] },
    ]);
    expect(webhook.matchConditions.map((c) => c.name)).toEqual(['not-our-service-accounts', 'not-being-deleted']);
    expect(webhook.matchConditions[0]!.expression).toBe("!(request.userInfo.username in ['system:serviceaccount:concurrency-guard:concurrency-guard'])");
  });

  it('takes a URL, a caBundle and failurePolicy Fail when asked', () => {
    const custom = renderValidatingWebhookConfiguration({
      namespace: 'cg', url: 'https://127.0.0.1:9443/', caBundlePem: 'PEM', failurePolicy: 'Fail', timeoutSeconds: 5,
    }) as unknown as Rendered;
    expect(custom.webhooks[0]!.clientConfig).toEqual({ url: 'https://127.0.0.1:9443/validate', caBundle: Buffer.from('PEM').toString('base64') });
    expect(custom.webhooks[0]!.failurePolicy).toBe('Fail');
    expect(custom.webhooks[0]!.timeoutSeconds).toBe(5);
    expect(() => renderValidatingWebhookConfiguration({ namespace: 'cg' })).toThrow('exactly one of service and url');
  });
});
