// GOMAXPROCS rules: a Go program's scheduler width against the CPU quota it runs under. Go ≥ 1.25 reads
// its own cgroup's quota (ceil, at least 2) unless GOMAXPROCS is set or containermaxprocs is off; a
// literal above the limit oversubscribes the quota and throttles, a resourceFieldRef without an own limit
// resolves to the node's CPU count (the classic GOMAXPROCS=64).
import type { Emit } from '../findings.ts';
import type { ContainerFacts, PodFacts } from '../facts.ts';
import type { EnvValue } from '../env.ts';
import { lookupEnv } from '../env.ts';
import { ceilUnits, isAcceptedCpuDivisor, isMilliDivisor, parseQuantityValue } from '../quantity.ts';
import { GOMAXPROCS_FROM_LIMIT, addEnvEntry, removeEnvEntry, replaceEnvEntry } from '../patches.ts';

export const GOMAXPROCS_RULES = {
  aboveCpuLimit: 'gomaxprocs/above-cpu-limit',
  notPositiveInteger: 'gomaxprocs/not-positive-integer',
  divisorMillicores: 'gomaxprocs/divisor-millicores',
  divisorRejected: 'gomaxprocs/divisor-rejected',
  resourceNotCpu: 'gomaxprocs/resource-not-cpu',
  refWithoutCpuLimit: 'gomaxprocs/ref-without-cpu-limit',
  aboveCpuRequest: 'gomaxprocs/above-cpu-request',
  containerMaxProcsOff: 'gomaxprocs/containermaxprocs-off',
  limitAtMostOneCore: 'gomaxprocs/limit-at-most-one-core',
  podLevelLimitOnly: 'gomaxprocs/pod-level-limit-only',
  unverifiable: 'gomaxprocs/unverifiable',
} as const;

export interface GomaxprocsParams {
  maxOverCPULimit: number;
}

const R = GOMAXPROCS_RULES;
const INT32_MAX = 2_147_483_647;
const POSITIVE_DECIMAL = /^[0-9]+$/;
const CONTAINERMAXPROCS_OFF = /(^|,)\s*containermaxprocs=0\s*(?=,|$)/;

/** Go's runtime reads GOMAXPROCS with atoi32 and ignores anything that is not a positive int32. */
export function goMaxProcsValue(text: string): number | undefined {
  if (!POSITIVE_DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && n <= INT32_MAX ? n : undefined;
}

function envPath(c: ContainerFacts, entry: EnvValue): string {
  return `${c.path}.env[${entry.index}]`;
}

/** A container's own declared limit (not LimitRange-defaulted): the only case for a resourceFieldRef fix. */
function hasOwnDeclaredLimit(c: ContainerFacts): boolean {
  return c.cpuLimit !== undefined && !c.cpuLimitDefaulted && c.cpuLimit.nano > 0n;
}

export function checkGomaxprocs(pod: PodFacts, c: ContainerFacts, params: GomaxprocsParams, emit: Emit): void {
  const found = lookupEnv(c.env, 'GOMAXPROCS');
  const limit = c.cpuLimit && c.cpuLimit.nano > 0n ? c.cpuLimit : undefined;
  const ceilLimit = limit ? ceilUnits(limit) : undefined;
  /** The finding's values plus the CPU limit it was judged against (and whether a LimitRange gave it). */
  const withCpu = (extra: Record<string, string | number | boolean>): Record<string, string | number | boolean> => ({
    ...extra,
    ...(c.cpuLimitText !== undefined ? { cpuLimit: c.cpuLimitText } : {}),
    ...(c.cpuLimitDefaulted ? { cpuLimitDefaulted: true } : {}),
  });

  if (found === 'maybe-envFrom') return; // the ConfigMap may set it: nothing here is knowable
  if (found === undefined) {
    checkUnset(pod, c, limit, emit);
    return;
  }
  const entry = found;
  const path = envPath(c, entry);

  if (entry.source === 'resourceFieldRef' && entry.resourceFieldRef) {
    const ref = entry.resourceFieldRef;
    const target = ref.containerName && ref.containerName.length > 0 ? ref.containerName : c.name;
    if (!ref.resource.endsWith('.cpu')) {
      emit({
        rule: R.resourceNotCpu, container: c.name, path: `${path}.valueFrom.resourceFieldRef.resource`, subject: 'GOMAXPROCS',
        values: withCpu({ resource: ref.resource }),
        message: `GOMAXPROCS comes from resourceFieldRef ${ref.resource}, which injects a byte count, not CPUs`,
        fix: hasOwnDeclaredLimit(c) ? 'Use resourceFieldRef limits.cpu with divisor "1".' : 'Set a CPU limit and use resourceFieldRef limits.cpu.',
        cap: 'Deny',
        patch: hasOwnDeclaredLimit(c) ? () => replaceEnvEntry(c, entry.index, GOMAXPROCS_FROM_LIMIT) : undefined,
      });
      return;
    }
    const divisor = ref.divisor === undefined ? undefined : parseQuantityValue(ref.divisor);
    if (divisor && isMilliDivisor(divisor)) {
      emit({
        rule: R.divisorMillicores, container: c.name, path: `${path}.valueFrom.resourceFieldRef.divisor`, subject: 'GOMAXPROCS',
        values: withCpu({ divisor: ref.divisor ?? '' }),
        message: `GOMAXPROCS from ${ref.resource} with divisor ${ref.divisor ?? ''} is in millicores (a 2-core limit gives GOMAXPROCS=2000)`,
        fix: 'Set the resourceFieldRef divisor to "1".',
        cap: 'Deny',
        patch: () => [{ op: 'replace', path: `${c.pointer}/env/${entry.index}/valueFrom/resourceFieldRef/divisor`, value: '1' }],
      });
      return;
    }
    if (divisor && divisor.nano !== 0n && !isAcceptedCpuDivisor(divisor)) {
      emit({
        rule: R.divisorRejected, container: c.name, path: `${path}.valueFrom.resourceFieldRef.divisor`, subject: 'GOMAXPROCS',
        values: withCpu({ divisor: ref.divisor ?? '' }),
        message: `the API server accepts only divisors that print as "1" or "1m" for ${ref.resource}; ${ref.divisor ?? ''} is rejected`,
        fix: 'Set the resourceFieldRef divisor to "1".',
        cap: 'Deny',
        patch: () => [{ op: 'replace', path: `${c.pointer}/env/${entry.index}/valueFrom/resourceFieldRef/divisor`, value: '1' }],
      });
      return;
    }
    if (ref.resource === 'limits.cpu' && !hasLimitOf(pod, target)) {
      const podLimit = pod.podCpuLimit;
      emit({
        rule: R.refWithoutCpuLimit, container: c.name, path: `${path}.valueFrom.resourceFieldRef`, subject: 'GOMAXPROCS',
        values: withCpu({ resource: ref.resource, container: target, ...(podLimit ? { resolvesTo: `pod limit ${ceilUnits(podLimit)}` } : { resolvesTo: 'node allocatable CPUs' }) }),
        message: `GOMAXPROCS from limits.cpu of container ${target}, which has no CPU limit of its own: it resolves to ${podLimit ? 'the pod-level limit' : "the node's allocatable CPUs (GOMAXPROCS=64 on a 64-core node)"}`,
        fix: `Give container ${target} a CPU limit.`,
        cap: 'Deny',
      });
      return;
    }
  }

  if (!entry.known) {
    emit({
      rule: R.unverifiable, container: c.name, path, subject: 'GOMAXPROCS',
      values: withCpu({ source: entry.source }),
      message: `GOMAXPROCS comes from a ${entry.source === 'literal' ? 'reference to an unknowable variable' : entry.source} and cannot be checked before the pod runs`,
      fix: 'Set GOMAXPROCS from resourceFieldRef limits.cpu instead.',
      cap: 'Warn',
    });
    return;
  }

  const n = goMaxProcsValue(entry.value);
  if (n === undefined) {
    const replacement = hasOwnDeclaredLimit(c)
      ? () => replaceEnvEntry(c, entry.index, GOMAXPROCS_FROM_LIMIT)
      : ceilLimit !== undefined
        ? () => replaceEnvEntry(c, entry.index, { name: 'GOMAXPROCS', value: String(ceilLimit) })
        : () => removeEnvEntry(c, entry.index);
    emit({
      rule: R.notPositiveInteger, container: c.name, path, subject: 'GOMAXPROCS',
      values: withCpu({ GOMAXPROCS: entry.value }),
      message: `GOMAXPROCS=${JSON.stringify(entry.value)} is not a positive integer: Go ignores it and uses its own default`,
      fix: hasOwnDeclaredLimit(c) ? 'Set GOMAXPROCS from resourceFieldRef limits.cpu, divisor "1".' : ceilLimit !== undefined ? `Set GOMAXPROCS to ${ceilLimit}.` : 'Remove GOMAXPROCS.',
      cap: 'Deny',
      patch: replacement,
    });
    return;
  }
  if (limit && ceilLimit !== undefined) {
    const allowed = ceilLimit + params.maxOverCPULimit;
    if (n > allowed) {
      const own = hasOwnDeclaredLimit(c);
      emit({
        rule: R.aboveCpuLimit, container: c.name, path, subject: 'GOMAXPROCS',
        values: withCpu({ GOMAXPROCS: n, allowed }),
        message: `GOMAXPROCS=${n} exceeds ceil(limits.cpu ${c.cpuLimitText ?? ''}) + ${params.maxOverCPULimit} = ${allowed}: more runnable threads than the quota, so the container is throttled`,
        fix: own ? 'Set GOMAXPROCS from resourceFieldRef limits.cpu, divisor "1".' : `Set GOMAXPROCS to ${ceilLimit}.`,
        cap: 'Deny',
        patch: own
          ? () => replaceEnvEntry(c, entry.index, GOMAXPROCS_FROM_LIMIT)
          : () => replaceEnvEntry(c, entry.index, { name: 'GOMAXPROCS', value: String(ceilLimit) }),
      });
    }
    return;
  }
  // No CPU limit: compare with the request, as a warning only.
  const request = c.cpuRequest && c.cpuRequest.nano > 0n ? c.cpuRequest : undefined;
  if (request) {
    const ceilRequest = ceilUnits(request);
    const allowed = ceilRequest + params.maxOverCPULimit;
    if (n > allowed) {
      emit({
        rule: R.aboveCpuRequest, container: c.name, path, subject: 'GOMAXPROCS',
        values: { GOMAXPROCS: n, allowed, cpuRequest: request.nano === 0n ? '0' : String(Number(request.nano) / 1e9), ...(c.cpuRequestDefaulted ? { cpuRequestDefaulted: true } : {}) },
        message: `GOMAXPROCS=${n} with no CPU limit exceeds ceil(requests.cpu) + ${params.maxOverCPULimit} = ${allowed}`,
        fix: `Set GOMAXPROCS to ${ceilRequest} or add a CPU limit.`,
        cap: 'Warn',
        patch: () => replaceEnvEntry(c, entry.index, { name: 'GOMAXPROCS', value: String(ceilRequest) }),
      });
    }
  }
}

function hasLimitOf(pod: PodFacts, containerName: string): boolean {
  const target = pod.containers.find((x) => x.name === containerName);
  return target?.cpuLimit !== undefined && target.cpuLimit.nano > 0n;
}

/** GOMAXPROCS unset: Go derives it from the quota, which has its own traps. */
function checkUnset(pod: PodFacts, c: ContainerFacts, limit: ContainerFacts['cpuLimit'], emit: Emit): void {
  const godebug = lookupEnv(c.env, 'GODEBUG');
  if (godebug !== undefined && godebug !== 'maybe-envFrom' && godebug.known && CONTAINERMAXPROCS_OFF.test(godebug.value)) {
    if (limit) {
      const remaining = godebug.value.split(',').filter((s) => s.trim() !== 'containermaxprocs=0').join(',');
      const isLiteral = godebug.source === 'literal';
      emit({
        rule: R.containerMaxProcsOff, container: c.name, path: `${c.path}.env[${godebug.index}]`, subject: 'GODEBUG',
        values: { GODEBUG: godebug.value, cpuLimit: c.cpuLimitText ?? '' },
        message: 'GODEBUG=containermaxprocs=0 makes Go ignore the CPU limit and run one thread per node CPU',
        fix: 'Remove containermaxprocs=0 from GODEBUG.',
        cap: 'Warn',
        patch: isLiteral
          ? () => (remaining === '' ? removeEnvEntry(c, godebug.index) : replaceEnvEntry(c, godebug.index, { name: 'GODEBUG', value: remaining }))
          : undefined,
      });
    }
    return;
  }
  if (c.list === 'ephemeralContainers') return;
  if (limit) {
    if (limit.nano <= 1_000_000_000n) {
      emit({
        rule: R.limitAtMostOneCore, container: c.name, path: `${c.path}.resources.limits.cpu`, subject: 'GOMAXPROCS',
        values: { cpuLimit: c.cpuLimitText ?? '', ...(c.cpuLimitDefaulted ? { cpuLimitDefaulted: true } : {}) },
        message: `CPU limit ${c.cpuLimitText ?? ''} is at most one core but Go ≥ 1.25 sets GOMAXPROCS to at least 2`,
        fix: 'Set env GOMAXPROCS=1.',
        cap: 'Warn',
        patch: () => addEnvEntry(c, { name: 'GOMAXPROCS', value: '1' }),
      });
    }
    return;
  }
  const podLimit = pod.podCpuLimit && pod.podCpuLimit.nano > 0n ? pod.podCpuLimit : undefined;
  if (podLimit) {
    const cores = ceilUnits(podLimit);
    emit({
      rule: R.podLevelLimitOnly, container: c.name, path: `${pod.specPath}.resources.limits.cpu`, subject: 'GOMAXPROCS',
      values: { podCpuLimit: cores },
      message: 'only a pod-level CPU limit is set: Go reads its own container cgroup, finds no quota and uses every node CPU',
      fix: `Set env GOMAXPROCS=${cores}.`,
      cap: 'Warn',
      patch: () => addEnvEntry(c, { name: 'GOMAXPROCS', value: String(cores) }),
    });
  }
}
