// What the webhook is registered for (DESIGN.md "Webhook"), as data the admission logic dispatches on and
// as the ValidatingWebhookConfiguration that Helm, `up` and the tests install. The configuration carries no
// caBundle unless one is given: the controller (or cert-manager) owns that field.
import { GROUP, excludedNamespaces } from '../api/index.ts';
import { WEBHOOK_PATH } from './metrics.ts';
import type { FailurePolicy } from './server.ts';

export interface Registration {
  group: string;
  resource: string;
  /** `resize` and `ephemeralcontainers` are pod subresources; empty for the object itself. */
  subResource: string;
  kind: string;
  operations: readonly ('CREATE' | 'UPDATE')[];
}

/** Every (resource, subresource, operation) the webhook is called for. No `*\/status`. */
export const REGISTRATIONS: readonly Registration[] = [
  { group: '', resource: 'pods', subResource: '', kind: 'Pod', operations: ['CREATE'] },
  // In-place resize can lower limits.cpu under a literal GOMAXPROCS.
  { group: '', resource: 'pods', subResource: 'resize', kind: 'Pod', operations: ['UPDATE'] },
  // Warnings only: `kubectl debug` must never be blocked.
  { group: '', resource: 'pods', subResource: 'ephemeralcontainers', kind: 'Pod', operations: ['UPDATE'] },
  { group: 'apps', resource: 'deployments', subResource: '', kind: 'Deployment', operations: ['CREATE', 'UPDATE'] },
  { group: 'apps', resource: 'statefulsets', subResource: '', kind: 'StatefulSet', operations: ['CREATE', 'UPDATE'] },
  { group: 'apps', resource: 'daemonsets', subResource: '', kind: 'DaemonSet', operations: ['CREATE', 'UPDATE'] },
  { group: 'apps', resource: 'replicasets', subResource: '', kind: 'ReplicaSet', operations: ['CREATE', 'UPDATE'] },
  { group: 'batch', resource: 'jobs', subResource: '', kind: 'Job', operations: ['CREATE', 'UPDATE'] },
  { group: 'batch', resource: 'cronjobs', subResource: '', kind: 'CronJob', operations: ['CREATE', 'UPDATE'] },
];

/** `group/Kind` keys of the kinds we handle (the metrics' bounded kind label set). */
export const HANDLED_KIND_KEYS: readonly string[] = [...new Set(REGISTRATIONS.map((r) => `${r.group}/${r.kind}`))];

export const WEBHOOK_NAME = `validate.${GROUP}`;
export const DEFAULT_CONFIGURATION_NAME = 'concurrency-guard';

export interface WebhookConfigurationOptions {
  /** metadata.name; default concurrency-guard. */
  name?: string;
  /** The namespace the webhook runs in: excluded, and the Service's namespace. */
  namespace: string;
  /** In-cluster: the Service in front of the webhook pods. */
  service?: { name: string; port?: number };
  /** Out of cluster (tests, `up`): an https URL; the path is appended. */
  url?: string;
  /** PEM; omitted unless given (the controller or cert-manager fills it in). */
  caBundlePem?: string;
  /** Default Ignore: the audit catches what slips through while the webhook is down. */
  failurePolicy?: FailurePolicy;
  /** Default 3. */
  timeoutSeconds?: number;
  /** Our own service accounts (`name` in `namespace`): their requests are not sent to us at all. */
  serviceAccounts?: readonly string[];
  /** More namespaces never sent to the webhook. */
  excludedNamespaces?: readonly string[];
  labels?: Record<string, string>;
}

interface RuleWithOperations {
  apiGroups: string[];
  apiVersions: string[];
  operations: string[];
  resources: string[];
  scope: 'Namespaced';
}

function rules(): RuleWithOperations[] {
  const byGroupAndOps = new Map<string, RuleWithOperations>();
  for (const r of REGISTRATIONS) {
    const key = `${r.group}|${r.operations.join(',')}`;
    const resource = r.subResource ? `${r.resource}/${r.subResource}` : r.resource;
    const existing = byGroupAndOps.get(key);
    if (existing) existing.resources.push(resource);
    else byGroupAndOps.set(key, { apiGroups: [r.group], apiVersions: ['v1'], operations: [...r.operations], resources: [resource], scope: 'Namespaced' });
  }
  return [...byGroupAndOps.values()];
}

/** Every namespace the webhook never sees: kube-system, kube-node-lease, its own, and any extra. */
export { excludedNamespaces };

function celStringList(values: readonly string[]): string {
  return `[${values.map((v) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(', ')}]`;
}

export function renderValidatingWebhookConfiguration(options: WebhookConfigurationOptions): Record<string, unknown> {
  if (!options.service === !options.url) throw new Error('exactly one of service and url is required');
  const clientConfig: Record<string, unknown> = options.service
    ? { service: { namespace: options.namespace, name: options.service.name, path: WEBHOOK_PATH, port: options.service.port ?? 443 } }
    : { url: `${options.url!.replace(/\/+$/, '')}${WEBHOOK_PATH}` };
  if (options.caBundlePem) clientConfig['caBundle'] = Buffer.from(options.caBundlePem).toString('base64');

  const usernames = (options.serviceAccounts ?? []).map((sa) => `system:serviceaccount:${options.namespace}:${sa}`);
  const matchConditions = [
    // A workload or pod being deleted (finalizers turn that into UPDATEs) is never blocked.
    { name: 'not-being-deleted', expression: "object == null || !has(object.metadata.deletionTimestamp)" },
  ];
  if (usernames.length > 0) {
    matchConditions.unshift({ name: 'not-our-service-accounts', expression: `!(request.userInfo.username in ${celStringList(usernames)})` });
  }
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: options.name ?? DEFAULT_CONFIGURATION_NAME, ...(options.labels ? { labels: options.labels } : {}) },
    webhooks: [{
      name: WEBHOOK_NAME,
      admissionReviewVersions: ['v1'],
      clientConfig,
      rules: rules(),
      failurePolicy: options.failurePolicy ?? 'Ignore',
      matchPolicy: 'Equivalent',
      sideEffects: 'None',
      timeoutSeconds: options.timeoutSeconds ?? 3,
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excludedNamespaces(options.namespace, options.excludedNamespaces) }],
      },
      matchConditions,
    }],
  };
}
