// What of a Pod the audit keeps in its cache: the fields the policy engine reads (src/policy/facts.ts:
// containers' name, image, env, envFrom, command, args, resources, securityContext; the pod's
// securityContext, resources, hostNetwork/hostIPC/hostUsers, annotations and labels) and what the
// controller needs (identity, nodeName). Volumes, volume mounts, tolerations and status are half of a
// pod's size and nothing here reads them: at 10,000 pods that is tens of MiB of heap.
import type { PodObject } from './engine.ts';

const CONTAINER_FIELDS = ['name', 'image', 'env', 'envFrom', 'command', 'args', 'resources', 'securityContext'] as const;
const SPEC_FIELDS = ['nodeName', 'securityContext', 'resources', 'hostNetwork', 'hostIPC', 'hostUsers', 'os'] as const;
const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;
const METADATA_FIELDS = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'labels', 'annotations'] as const;

function pick<T extends object>(source: T, fields: readonly string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = (source as Record<string, unknown>)[field];
    if (value !== undefined) out[field] = value;
  }
  return out as Partial<T>;
}

/**
 * Strips the pod in place (the informer's cache holds this very object, so the memory is really freed)
 * and returns it.
 */
export function slimPod(pod: PodObject): PodObject {
  const metadata = pick(pod.metadata, METADATA_FIELDS);
  for (const key of Object.keys(pod.metadata)) delete (pod.metadata as Record<string, unknown>)[key];
  Object.assign(pod.metadata, metadata);
  const spec = pod.spec;
  if (spec) {
    const kept: Record<string, unknown> = pick(spec, SPEC_FIELDS);
    for (const list of CONTAINER_LISTS) {
      const containers = spec[list];
      if (Array.isArray(containers)) kept[list] = containers.map((c) => pick(c as object, CONTAINER_FIELDS));
    }
    for (const key of Object.keys(spec)) delete spec[key];
    Object.assign(spec, kept);
  }
  delete pod.status;
  return pod;
}
