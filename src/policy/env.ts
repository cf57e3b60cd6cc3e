// A container's environment resolved the way the kubelet resolves it (pkg/kubelet/kubelet_pods.go
// makeEnvironmentVariables and third_party/forked/golang/expansion): envFrom first, then env in order;
// `$(VAR)` in a literal value expands only variables defined earlier (envFrom included); an unresolved
// reference stays literal; `$$` is an escaped `$`; the last duplicate wins. Values the engine cannot
// know (ConfigMaps, Secrets, node allocatable, status fields) are kept as unknown, never guessed.
import type { V1Container } from '@kubernetes/client-node';
import { asArray, asRecord, asString } from './shape.ts';
import type { Quantity } from './quantity.ts';
import { parseQuantityValue } from './quantity.ts';

export type EnvSource =
  | 'literal'
  | 'resourceFieldRef'
  | 'fieldRef'
  | 'configMapKeyRef'
  | 'secretKeyRef'
  | 'fileKeyRef'
  | 'envFrom';

export interface EnvValue {
  /** The resolved string; meaningful only when `known`. */
  value: string;
  known: boolean;
  source: EnvSource;
  /** Index of the winning entry in container.env (the last duplicate); -1 for envFrom. */
  index: number;
  /** Set when the value came from a resourceFieldRef. */
  resourceFieldRef?: { resource: string; divisor: string | undefined; containerName?: string };
}

export interface ResolvedEnv {
  vars: Map<string, EnvValue>;
  /** Prefixes of envFrom sources: a name starting with one may be defined there, unknowably. */
  envFromPrefixes: readonly string[];
  serviceLinks: boolean;
}

const NO_PREFIXES: readonly string[] = [];

/** What a resourceFieldRef needs to know about the pod. */
export interface ResourceResolver {
  /** Container resources after LimitRange defaulting, by container name. */
  resource(containerName: string, resource: string): Quantity | undefined;
  podLimit(resource: string): Quantity | undefined;
  labels: Readonly<Record<string, string>> | undefined;
  annotations: Readonly<Record<string, string>> | undefined;
  name: string | undefined;
  namespace: string | undefined;
  /** spec.enableServiceLinks is not false: Service variables (FOO_SERVICE_HOST, …) are in scope. */
  serviceLinks: boolean;
}

// Docker-links style variables the kubelet adds for Services (pkg/kubelet/envvars): `$(X_SERVICE_PORT)`
// may resolve to one, unknowably. KUBERNETES_* (the API server's Service) is there even without links.
const SERVICE_VARIABLE = /^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

function mayBeServiceVariable(name: string, serviceLinks: boolean): boolean {
  return (serviceLinks || name.startsWith('KUBERNETES_')) && SERVICE_VARIABLE.test(name);
}

const OPERATOR = 36; // '$'
const OPENER = 40; // '('

export interface ExpandResult {
  value: string;
  /** False when a referenced variable has an unknowable value. */
  known: boolean;
}

/**
 * expansion.Expand with the kubelet's mapping: `lookup` returns the variable's value, or undefined
 * when it is not defined (the reference then stays literal), or null when it is defined unknowably.
 */
export function expand(input: string, lookup: (name: string) => string | undefined | null): ExpandResult {
  if (input.indexOf('$') < 0) return { value: input, known: true };
  let out = '';
  let known = true;
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input.charCodeAt(cursor) !== OPERATOR || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input.charCodeAt(cursor + 1);
    let advance = 1;
    if (next === OPERATOR) {
      out += '$';
    } else if (next === OPENER) {
      const close = input.indexOf(')', cursor + 2);
      if (close < 0) {
        out += '$(';
      } else {
        const name = input.slice(cursor + 2, close);
        const value = lookup(name);
        if (value === null) known = false;
        out += value ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      out += input.slice(cursor, cursor + 2);
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return { value: out + input.slice(checkpoint), known };
}

function mayComeFromEnvFrom(name: string, prefixes: readonly string[]): boolean {
  for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
  return false;
}

function fieldRefValue(fieldPath: string, pod: ResourceResolver): string | undefined {
  switch (fieldPath) {
    case 'metadata.name':
      return pod.name;
    case 'metadata.namespace':
      return pod.namespace;
    default: {
      const match = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(fieldPath);
      if (!match) return undefined;
      const map = match[1] === 'labels' ? pod.labels : pod.annotations;
      return map?.[match[2] as string] ?? '';
    }
  }
}

const MILLI = 1_000_000n;
const NUMBER_SAFE_NANO = 1_000_000_000_000_000n;

/** MilliValue(): ceil(nano / 10^6), with a Number fast path (BigInt division is slow on the hot path). */
function ceilMilli(nano: bigint): number {
  if (nano >= 0n && nano < NUMBER_SAFE_NANO) return Math.ceil(Number(nano) / 1e6);
  return Number(nano <= 0n ? nano / MILLI : (nano + MILLI - 1n) / MILLI);
}

/**
 * The kubelet's convertResourceCPUToString / convertResourceMemoryToString: ceil(value / divisor);
 * undefined when the value depends on the node (no limit of the container's own and no pod-level one).
 */
function resourceFieldValue(ref: { resource: string; divisor: string | undefined; containerName?: string }, self: string, pod: ResourceResolver): string | undefined {
  const target = ref.containerName && ref.containerName.length > 0 ? ref.containerName : self;
  const divisorQuantity = ref.divisor === undefined ? undefined : parseQuantityValue(ref.divisor);
  const divisorNano = divisorQuantity && divisorQuantity.nano !== 0n ? divisorQuantity.nano : 1_000_000_000n;
  const resource = ref.resource;
  let quantity = pod.resource(target, resource);
  if (!quantity && resource.startsWith('limits.')) quantity = pod.podLimit(resource.slice('limits.'.length));
  if (!quantity) return undefined;
  if (resource.endsWith('.cpu')) {
    // math.Ceil(float64(cpu.MilliValue()) / float64(divisor.MilliValue()))
    const divisorMilli = ceilMilli(divisorNano);
    if (divisorMilli <= 0) return undefined;
    return String(Math.ceil(ceilMilli(quantity.nano) / divisorMilli));
  }
  // Memory, ephemeral storage, hugepages: ceil(bytes / divisor).
  const bytes = quantity.nano;
  return ((bytes + divisorNano - 1n) / divisorNano).toString();
}

export function resolveEnv(container: V1Container, pod: ResourceResolver): ResolvedEnv {
  const vars = new Map<string, EnvValue>();
  let envFromPrefixes = NO_PREFIXES;
  const envFrom = asArray(container.envFrom);
  if (envFrom.length > 0) {
    const prefixes: string[] = [];
    for (const source of envFrom) {
      const record = asRecord(source);
      if (record) prefixes.push(asString(record.prefix) ?? '');
    }
    envFromPrefixes = prefixes;
  }
  const selfName = asString(container.name) ?? '';
  const lookup = (name: string): string | undefined | null => {
    const defined = vars.get(name);
    if (defined) return defined.known ? defined.value : null;
    return mayComeFromEnvFrom(name, envFromPrefixes) || mayBeServiceVariable(name, pod.serviceLinks) ? null : undefined;
  };
  const env = asArray(container.env);
  for (let index = 0; index < env.length; index++) {
    const entry = asRecord(env[index]);
    if (!entry) continue;
    const name = asString(entry.name);
    if (name === undefined) continue;
    const literal = asString(entry.value) ?? '';
    const valueFrom = asRecord(entry.valueFrom);
    if (literal !== '' || !valueFrom) {
      const expanded = expand(literal, lookup);
      vars.set(name, { value: expanded.value, known: expanded.known, source: 'literal', index });
      continue;
    }
    const resourceRef = asRecord(valueFrom.resourceFieldRef);
    const fieldRef = asRecord(valueFrom.fieldRef);
    if (resourceRef) {
      const ref = {
        resource: asString(resourceRef.resource) ?? '',
        divisor: typeof resourceRef.divisor === 'number' ? String(resourceRef.divisor) : asString(resourceRef.divisor),
        containerName: asString(resourceRef.containerName),
      };
      const value = resourceFieldValue(ref, selfName, pod);
      vars.set(name, { value: value ?? '', known: value !== undefined, source: 'resourceFieldRef', index, resourceFieldRef: ref });
    } else if (fieldRef) {
      const value = fieldRefValue(asString(fieldRef.fieldPath) ?? '', pod);
      vars.set(name, { value: value ?? '', known: value !== undefined, source: 'fieldRef', index });
    } else {
      const source: EnvSource = valueFrom.configMapKeyRef ? 'configMapKeyRef' : valueFrom.secretKeyRef ? 'secretKeyRef' : 'fileKeyRef';
      vars.set(name, { value: '', known: false, source, index });
    }
  }
  return { vars, envFromPrefixes, serviceLinks: pod.serviceLinks };
}

/** A variable of the final environment: defined, possibly unknowable, or possibly from envFrom. */
/** 'maybe-envFrom': possibly defined by envFrom or a Service variable, unknowably. */
export function lookupEnv(env: ResolvedEnv, name: string): EnvValue | 'maybe-envFrom' | undefined {
  const value = env.vars.get(name);
  if (value) return value;
  return mayComeFromEnvFrom(name, env.envFromPrefixes) || mayBeServiceVariable(name, env.serviceLinks) ? 'maybe-envFrom' : undefined;
}

/** The kubelet expands `$(VAR)` in command and args with the whole final environment. */
export function expandWithFinalEnv(input: string, env: ResolvedEnv): ExpandResult {
  return expand(input, (name) => {
    const value = lookupEnv(env, name);
    if (value === undefined) return undefined;
    if (value === 'maybe-envFrom' || !value.known) return null;
    return value.value;
  });
}
