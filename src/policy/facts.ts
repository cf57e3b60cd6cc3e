// Everything the rules need to know about one pod spec, computed once per evaluation and shared by every
// policy: where the spec sits in the admitted object, each container's effective CPU (LimitRange
// defaults applied, and whether a value was defaulted), its resolved environment, its user, its declared
// ulimits per source, and the pod's sysctls with normalised names.
import type { V1Container, V1LimitRange } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import type { ResolvedEnv, ResourceResolver } from './env.ts';
import { expandWithFinalEnv, resolveEnv } from './env.ts';
import type { Quantity } from './quantity.ts';
import { parseQuantityValue } from './quantity.ts';
import type { Limit, ShellInvocation } from './shell.ts';
import { findShellInvocation } from './shell.ts';
import { asArray, asInteger, asRecord, asString, asStringRecord, pointerSegment } from './shape.ts';

/** Where the pod spec lives in an object of a given kind. */
export interface PodLocation {
  /** JSON pointer segments from the object root to the pod template (or the Pod itself). */
  root: readonly string[];
  isTemplate: boolean;
}

const POD_LOCATIONS: Readonly<Record<string, PodLocation>> = {
  Pod: { root: [], isTemplate: false },
  Deployment: { root: ['spec', 'template'], isTemplate: true },
  StatefulSet: { root: ['spec', 'template'], isTemplate: true },
  DaemonSet: { root: ['spec', 'template'], isTemplate: true },
  ReplicaSet: { root: ['spec', 'template'], isTemplate: true },
  ReplicationController: { root: ['spec', 'template'], isTemplate: true },
  Job: { root: ['spec', 'template'], isTemplate: true },
  CronJob: { root: ['spec', 'jobTemplate', 'spec', 'template'], isTemplate: true },
  PodTemplate: { root: ['template'], isTemplate: true },
};

export function podLocationOf(kind: string): PodLocation | undefined {
  return POD_LOCATIONS[kind];
}

export type ContainerList = 'containers' | 'initContainers' | 'ephemeralContainers';

export interface ContainerFacts {
  name: string;
  list: ContainerList;
  index: number;
  /** Field path, e.g. `spec.template.spec.containers[0]`. */
  path: string;
  /** JSON pointer, e.g. `/spec/template/spec/containers/0`. */
  pointer: string;
  container: V1Container;
  /** Effective CPU limit: declared, else a LimitRange default. */
  cpuLimit?: Quantity;
  cpuLimitText?: string;
  /** The limit came from a LimitRange default, not the manifest. */
  cpuLimitDefaulted: boolean;
  cpuRequest?: Quantity;
  cpuRequestDefaulted: boolean;
  env: ResolvedEnv;
  /** The container's UID when known (container securityContext over pod securityContext). */
  runAsUser?: number;
  runAsNonRoot: boolean;
  /** CAP_SYS_RESOURCE is effective: the process runs as root and has not dropped it. */
  canRaiseHard: boolean | 'unknown';
  addsSysResource: boolean;
  nri?: NriDeclaration;
  securityContextUlimits?: UlimitEntry[];
  shell?: ShellInvocation;
  /** Field path of the script argument, e.g. `spec.containers[0].args[1]`. */
  shellPath?: string;
  /** The script after the kubelet's `$(VAR)` expansion of command and args. */
  argv: readonly string[];
}

export interface UlimitEntry {
  /** Upper-case name without the RLIMIT_ prefix: NOFILE, NPROC, … */
  type: string;
  soft: number;
  hard: number;
  softMissing: boolean;
  hardMissing: boolean;
  index: number;
}

export interface NriDeclaration {
  key: string;
  /** undefined when the plugin would fail to parse the annotation (the container then fails). */
  entries?: UlimitEntry[];
  error?: string;
}

export interface SysctlFacts {
  name: string;
  declaredName: string;
  value: string;
  index: number;
}

export interface PodFacts {
  kind: string;
  location: PodLocation;
  /** Field path of the pod spec, e.g. `spec.template.spec`. */
  specPath: string;
  specPointer: string;
  metadataPointer: string;
  /** Field path of the pod (or template) metadata, e.g. `spec.template.metadata`. */
  metadataPath: string;
  name?: string;
  namespace?: string;
  labels?: Readonly<Record<string, string>>;
  annotations?: Readonly<Record<string, string>>;
  hasAnnotations: boolean;
  containers: ContainerFacts[];
  hasEphemeral: boolean;
  podCpuLimit?: Quantity;
  sysctls: SysctlFacts[];
  hostNetwork: boolean;
  hostIPC: boolean;
  hostUsers: boolean;
  /** NRI annotations naming no container of the pod (they apply to nothing). */
  nriKeysWithoutContainer: string[];
}

export const NRI_ANNOTATION_PREFIX = 'ulimits.noderesource.dev/container.';
export const NRI_LEGACY_ANNOTATION_PREFIX = 'ulimits.nri.containerd.io/container.';

const VALID_RLIMITS = new Set(['AS', 'CORE', 'CPU', 'DATA', 'FSIZE', 'LOCKS', 'MEMLOCK', 'MSGQUEUE', 'NICE', 'NOFILE', 'NPROC', 'RSS', 'RTPRIO', 'RTTIME', 'SIGPENDING', 'STACK']);

const nriCache = new Map<string, { entries?: UlimitEntry[]; error?: string }>();

/**
 * The NRI ulimit-adjuster's reading of its annotation: a YAML list of {type, soft, hard}; type
 * case-insensitive with an optional RLIMIT_ prefix; a missing soft or hard reads as 0; anything it
 * cannot unmarshal into uint64 fails the container.
 */
export function parseNriAnnotation(text: string): { entries?: UlimitEntry[]; error?: string } {
  const hit = nriCache.get(text);
  if (hit) return hit;
  let result: { entries?: UlimitEntry[]; error?: string };
  try {
    const parsed: unknown = parseYaml(text, { logLevel: 'silent' });
    if (parsed === null || parsed === undefined) result = { entries: [] };
    else if (!Array.isArray(parsed)) result = { error: 'the annotation is not a YAML list' };
    else {
      const entries: UlimitEntry[] = [];
      let error: string | undefined;
      parsed.forEach((item: unknown, index) => {
        if (error) return;
        const record = asRecord(item);
        if (!record) {
          error = `entry ${index} is not a mapping`;
          return;
        }
        const typeText = typeof record.type === 'string' ? record.type : '';
        const type = typeText.toUpperCase().replace(/^RLIMIT_/, '');
        if (!VALID_RLIMITS.has(type)) {
          error = `unknown type ${JSON.stringify(typeText)}`;
          return;
        }
        const read = (value: unknown): number | 'bad' | undefined => {
          if (value === undefined || value === null) return undefined;
          return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 'bad';
        };
        const soft = read(record.soft);
        const hard = read(record.hard);
        if (soft === 'bad' || hard === 'bad') {
          error = `${type}: soft and hard must be non-negative integers`;
          return;
        }
        entries.push({ type, soft: soft ?? 0, hard: hard ?? 0, softMissing: soft === undefined, hardMissing: hard === undefined, index });
      });
      result = error ? { error } : { entries };
    }
  } catch (cause) {
    result = { error: `invalid YAML: ${(cause as Error).message.split('\n')[0] ?? ''}` };
  }
  if (nriCache.size > 1024) nriCache.clear();
  nriCache.set(text, result);
  return result;
}

/**
 * The kubelet's sysctl name normalisation: with '/' as the first separator, '/' and '.' swap
 * (`net/ipv4/conf/eno2.100/rp_filter` is `net.ipv4.conf.eno2/100.rp_filter`).
 */
export function normalizeSysctlName(name: string): string {
  const dot = name.indexOf('.');
  const slash = name.indexOf('/');
  if (slash < 0 || (dot >= 0 && dot < slash)) return name;
  let out = '';
  for (const c of name) out += c === '/' ? '.' : c === '.' ? '/' : c;
  return out;
}

interface LimitRangeDefaults {
  cpuLimit?: string;
  cpuRequest?: string;
}

/** The first LimitRange's Container defaults for CPU, as LimitRanger applies them. */
export function limitRangeDefaults(limitRanges: readonly V1LimitRange[] | undefined): LimitRangeDefaults {
  const defaults: LimitRangeDefaults = {};
  for (const range of limitRanges ?? []) {
    for (const item of asArray(asRecord(range.spec)?.limits)) {
      const record = asRecord(item);
      if (!record || record.type !== 'Container') continue;
      const limit = quantityText(asRecord(record.default)?.cpu);
      const request = quantityText(asRecord(record.defaultRequest)?.cpu) ?? limit;
      defaults.cpuLimit ??= limit;
      defaults.cpuRequest ??= request;
    }
  }
  return defaults;
}

function quantityText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

const LISTS: readonly ContainerList[] = ['initContainers', 'containers', 'ephemeralContainers'];
const NO_KEYS: string[] = [];
const UNRESOLVED_ENV: ResolvedEnv = { vars: new Map(), envFromPrefixes: [], serviceLinks: false };

function namesCapability(list: unknown, capability: string): boolean {
  if (!Array.isArray(list)) return false;
  for (const item of list) {
    if (typeof item !== 'string') continue;
    const name = item.toUpperCase();
    if (name === capability || name === `CAP_${capability}`) return true;
  }
  return false;
}

/** Builds PodFacts for the pod spec of `object` (a Pod or a workload); undefined when there is none. */
export function podFactsOf(kind: string, object: unknown, limitRanges: readonly V1LimitRange[] | undefined, namespace: string | undefined): PodFacts | undefined {
  const location = podLocationOf(kind);
  if (!location) return undefined;
  let pod: Record<string, unknown> | undefined = asRecord(object);
  for (const segment of location.root) pod = asRecord(pod?.[segment]);
  if (!pod) return undefined;
  const spec = asRecord(pod.spec);
  if (!spec) return undefined;
  const metadata = asRecord(pod.metadata);
  const rootPointer = location.root.map((s) => `/${s}`).join('');
  const rootPath = location.root.join('.');
  const specPath = rootPath ? `${rootPath}.spec` : 'spec';
  const specPointer = `${rootPointer}/spec`;
  const labels = asStringRecord(metadata?.labels);
  const annotations = asStringRecord(metadata?.annotations);
  const objectMetadata = asRecord(asRecord(object)?.metadata);
  const podSecurity = asRecord(spec.securityContext);
  const podResources = asRecord(asRecord(spec.resources)?.limits);
  const podCpuLimit = podResources ? parseQuantityValue(podResources.cpu) : undefined;
  const defaults = limitRangeDefaults(limitRanges);

  const facts: PodFacts = {
    kind,
    location,
    specPath,
    specPointer,
    metadataPointer: `${rootPointer}/metadata`,
    metadataPath: rootPath ? `${rootPath}.metadata` : 'metadata',
    name: asString(metadata?.name) ?? asString(objectMetadata?.name),
    namespace: asString(metadata?.namespace) ?? asString(objectMetadata?.namespace) ?? namespace,
    labels,
    annotations,
    hasAnnotations: asRecord(metadata?.annotations) !== undefined,
    containers: [],
    hasEphemeral: asArray(spec.ephemeralContainers).length > 0,
    podCpuLimit,
    sysctls: [],
    hostNetwork: spec.hostNetwork === true,
    hostIPC: spec.hostIPC === true,
    hostUsers: spec.hostUsers !== false,
    nriKeysWithoutContainer: NO_KEYS,
  };

  const resolver: ResourceResolver = {
    resource(containerName, resource) {
      const target = facts.containers.find((c) => c.name === containerName);
      if (!target) return undefined;
      if (resource === 'limits.cpu') return target.cpuLimit;
      if (resource === 'requests.cpu') return target.cpuRequest;
      const [section, name] = resource.split('.', 2) as [string, string | undefined];
      const map = asRecord(asRecord(target.container.resources)?.[section === 'limits' ? 'limits' : 'requests']);
      return name && map ? parseQuantityValue(map[name]) : undefined;
    },
    podLimit(resource) {
      return podResources ? parseQuantityValue(podResources[resource]) : undefined;
    },
    labels,
    annotations,
    name: facts.name,
    namespace: facts.namespace,
    serviceLinks: spec.enableServiceLinks !== false,
  };

  // First pass: names and resources (a resourceFieldRef may name another container).
  for (const list of LISTS) {
    const items = asArray(spec[list]);
    for (let index = 0; index < items.length; index++) {
      const container = asRecord(items[index]);
      if (!container) continue;
      const name = asString(container.name) ?? '';
      const resources = asRecord(container.resources);
      const limits = asRecord(resources?.limits);
      const requests = asRecord(resources?.requests);
      let cpuLimitText = quantityText(limits?.cpu);
      let cpuLimitDefaulted = false;
      // LimitRanger defaults init and app containers, not ephemeral ones.
      if (cpuLimitText === undefined && defaults.cpuLimit !== undefined && list !== 'ephemeralContainers') {
        cpuLimitText = defaults.cpuLimit;
        cpuLimitDefaulted = true;
      }
      let cpuRequestText = quantityText(requests?.cpu);
      let cpuRequestDefaulted = false;
      if (cpuRequestText === undefined && list !== 'ephemeralContainers') {
        // Defaulting: a request defaults to the declared limit, else to the LimitRange.
        if (cpuLimitText !== undefined && !cpuLimitDefaulted) cpuRequestText = cpuLimitText;
        else if (defaults.cpuRequest !== undefined) {
          cpuRequestText = defaults.cpuRequest;
          cpuRequestDefaulted = true;
        }
      }
      const cpuLimit = cpuLimitText === undefined ? undefined : parseQuantityValue(cpuLimitText);
      const cpuRequest = cpuRequestText === undefined ? undefined : parseQuantityValue(cpuRequestText);
      const containerSecurity = asRecord(container.securityContext);
      const runAsUser = asInteger(containerSecurity?.runAsUser) ?? asInteger(podSecurity?.runAsUser);
      const runAsNonRoot = (containerSecurity?.runAsNonRoot ?? podSecurity?.runAsNonRoot) === true;
      const capabilities = asRecord(containerSecurity?.capabilities);
      const addsSysResource = capabilities ? namesCapability(capabilities.add, 'SYS_RESOURCE') : false;
      const dropsSysResource = capabilities ? namesCapability(capabilities.drop, 'SYS_RESOURCE') || namesCapability(capabilities.drop, 'ALL') : false;
      const privileged = containerSecurity?.privileged === true;
      let canRaiseHard: boolean | 'unknown';
      if (runAsUser === 0) canRaiseHard = privileged || !dropsSysResource || addsSysResource;
      else if (runAsUser !== undefined || runAsNonRoot) canRaiseHard = false; // no ambient capabilities
      else canRaiseHard = dropsSysResource && !addsSysResource ? false : 'unknown';
      facts.containers.push({
        name,
        list,
        index,
        path: `${specPath}.${list}[${index}]`,
        pointer: `${specPointer}/${list}/${index}`,
        container: container as unknown as V1Container,
        cpuLimit,
        cpuLimitText,
        cpuLimitDefaulted,
        cpuRequest,
        cpuRequestDefaulted,
        env: UNRESOLVED_ENV,
        runAsUser,
        runAsNonRoot,
        canRaiseHard,
        addsSysResource,
        argv: NO_KEYS,
      });
    }
  }

  // NRI annotations by container name, the current key winning over the legacy one; one scan.
  let nriKeys: Map<string, string> | undefined;
  if (annotations) {
    for (const key in annotations) {
      if (key.charCodeAt(0) !== 117 /* u */) continue;
      if (key.startsWith(NRI_ANNOTATION_PREFIX)) {
        (nriKeys ??= new Map()).set(key.slice(NRI_ANNOTATION_PREFIX.length), key);
      } else if (key.startsWith(NRI_LEGACY_ANNOTATION_PREFIX)) {
        const name = key.slice(NRI_LEGACY_ANNOTATION_PREFIX.length);
        if (!nriKeys?.has(name)) (nriKeys ??= new Map()).set(name, key);
      }
    }
  }

  // Second pass: environment, command, ulimit declarations.
  for (const facts_ of facts.containers) {
    const container = facts_.container;
    facts_.env = resolveEnv(container, resolver);
    const command = asArray(container.command);
    const args = asArray(container.args);
    if (command.length > 0 && command.every((a) => typeof a === 'string') && args.every((a) => typeof a === 'string')) {
      let known = true;
      facts_.argv = [...(command as string[]), ...(args as string[])].map((word) => {
        const expanded = expandWithFinalEnv(word, facts_.env);
        if (!expanded.known) known = false;
        return expanded.value;
      });
      const image = asString(container.image) ?? '';
      const shell = findShellInvocation(facts_.argv, image);
      // A script whose text depends on unknowable values is treated as unresolvable.
      if (shell && known) facts_.shell = shell;
      else if (shell) facts_.shell = { ...shell, script: '$(__unresolved__)' };
      if (shell) {
        facts_.shellPath = shell.argvIndex < command.length
          ? `${facts_.path}.command[${shell.argvIndex}]`
          : `${facts_.path}.args[${shell.argvIndex - command.length}]`;
      }
    }
    if (nriKeys) {
      const key = nriKeys.get(facts_.name);
      if (key !== undefined) {
        facts_.nri = { key, ...parseNriAnnotation((annotations as Record<string, string>)[key] as string) };
        nriKeys.delete(facts_.name);
      }
    }
    const ulimits = asRecord(container.securityContext)?.ulimits;
    if (Array.isArray(ulimits)) {
      facts_.securityContextUlimits = [];
      ulimits.forEach((item: unknown, index) => {
        const record = asRecord(item);
        if (!record) return;
        const soft = asInteger(record.soft);
        const hard = asInteger(record.hard);
        facts_.securityContextUlimits?.push({
          type: (asString(record.name) ?? '').toUpperCase().replace(/^RLIMIT_/, ''),
          soft: soft === -1 ? Number.POSITIVE_INFINITY : (soft ?? 0),
          hard: hard === -1 ? Number.POSITIVE_INFINITY : (hard ?? 0),
          softMissing: soft === undefined,
          hardMissing: hard === undefined,
          index,
        });
      });
    }
  }

  // What is left names no container.
  if (nriKeys && nriKeys.size > 0) facts.nriKeysWithoutContainer = [...nriKeys.values()];

  const sysctls = asArray(podSecurity?.sysctls);
  for (let index = 0; index < sysctls.length; index++) {
    const record = asRecord(sysctls[index]);
    const declaredName = asString(record?.name);
    if (!record || declaredName === undefined) continue;
    facts.sysctls.push({ name: normalizeSysctlName(declaredName), declaredName, value: quantityText(record.value) ?? '', index });
  }
  return facts;
}

/** JSON pointer of an annotation of the pod (or template). */
export function annotationPointer(facts: PodFacts, key: string): string {
  return `${facts.metadataPointer}/annotations/${pointerSegment(key)}`;
}

export type { Limit };
