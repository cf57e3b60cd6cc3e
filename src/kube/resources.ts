// The REST coordinates of the kinds we talk to, and how their URLs are built. A handful of kinds, written
// out by hand, instead of discovery: we know at build time what we read and write.
import { GROUP, VERSION, POLICY_KIND, POLICY_PLURAL, REPORT_KIND, REPORT_PLURAL } from '../api/index.ts';

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const PODS: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
export const NAMESPACES: ResourceType = { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false };
export const CONFIG_MAPS: ResourceType = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };
export const SECRETS: ResourceType = { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true };
export const LIMIT_RANGES: ResourceType = { group: '', version: 'v1', kind: 'LimitRange', plural: 'limitranges', namespaced: true };
export const LEASES: ResourceType = { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true };
export const VALIDATING_WEBHOOK_CONFIGURATIONS: ResourceType = {
  group: 'admissionregistration.k8s.io', version: 'v1', kind: 'ValidatingWebhookConfiguration',
  plural: 'validatingwebhookconfigurations', namespaced: false,
};
export const CONCURRENCY_POLICIES: ResourceType = { group: GROUP, version: VERSION, kind: POLICY_KIND, plural: POLICY_PLURAL, namespaced: false };
export const CONCURRENCY_REPORTS: ResourceType = { group: GROUP, version: VERSION, kind: REPORT_KIND, plural: REPORT_PLURAL, namespaced: true };

export function apiVersionOf(resource: ResourceType): string {
  return resource.group ? `${resource.group}/${resource.version}` : resource.version;
}

/**
 * The collection URL (`namespace` omitted on a namespaced kind = across all namespaces), or one object's
 * URL when `name` is given, or its subresource.
 */
export function resourcePath(resource: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  const base = resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`;
  if (resource.namespaced && name !== undefined && !namespace) {
    throw new Error(`${resource.kind} ${name} is namespaced: a namespace is required`);
  }
  const scope = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  let path = `${base}${scope}/${resource.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}
