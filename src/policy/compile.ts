// Policies compiled once per policy generation: selectors become predicates, allowedUnsafe patterns
// become a set plus prefixes, and each rule family's parameters get a key so that policies sharing
// parameters are evaluated once and credited together.
import type { ConcurrencyPolicy, Enforcement } from '../api/index.ts';
import { ALWAYS_EXCLUDED_NAMESPACES } from '../api/index.ts';
import { compileMatch, type PodMatcher } from './match.ts';
import { normalizeSysctlName } from './facts.ts';
import type { GomaxprocsParams } from './rules/gomaxprocs.ts';
import type { UlimitParams } from './rules/ulimits.ts';
import { DEFAULT_RUNTIME_NOFILE } from './rules/ulimits.ts';
import type { SysctlParams, Versions } from './rules/sysctls.ts';
import { DEFAULT_VERSIONS, safeSysctls } from './rules/sysctls.ts';

export interface FamilySettings<P> {
  params: P;
  /** Equal keys mean equal parameters: evaluated once per request. */
  key: string;
  enforcement: Enforcement;
}

export interface CompiledPolicy {
  name: string;
  generation?: number;
  matches: PodMatcher;
  gomaxprocs?: FamilySettings<GomaxprocsParams>;
  ulimits?: FamilySettings<UlimitParams>;
  sysctls?: FamilySettings<SysctlParams>;
}

/** Policies sharing one family's parameters: the family runs once for all of them. */
export interface FamilyGroup<P> {
  params: P;
  /** Indices into `policies` and each member's enforcement for this family. */
  members: readonly { index: number; enforcement: Enforcement }[];
}

export interface CompiledPolicies {
  policies: readonly CompiledPolicy[];
  groups: {
    gomaxprocs: readonly FamilyGroup<GomaxprocsParams>[];
    ulimits: readonly FamilyGroup<UlimitParams>[];
    sysctls: readonly FamilyGroup<SysctlParams>[];
  };
  /** Scratch space for evaluate(): which policies matched this request (evaluation is synchronous). */
  matched: Uint8Array;
  /** Namespaces never evaluated: kube-system, kube-node-lease and the operator's own. */
  excludedNamespaces: ReadonlySet<string>;
  safeSysctls: ReadonlySet<string>;
}

export interface CompileOptions {
  /** The operator's own namespace (and any other) to exclude everywhere. */
  excludedNamespaces?: readonly string[];
  versions?: Versions;
}

function nonNegative(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

function enforcementOf(value: unknown, fallback: Enforcement): Enforcement {
  return value === 'Deny' || value === 'Warn' || value === 'Audit' ? value : fallback;
}

function compileSysctlParams(allowedUnsafe: readonly unknown[], minimums: Record<string, unknown>): { params: SysctlParams; key: string } {
  const key = JSON.stringify([allowedUnsafe, minimums]);
  // Policies sharing a key are grouped by it (groupBy), so the params are built once per distinct key anyway.
  const allowedExact = new Set<string>();
  const allowedPrefixes: string[] = [];
  for (const pattern of allowedUnsafe) {
    if (typeof pattern !== 'string') continue;
    // As the kubelet reads --allowed-unsafe-sysctls: everything before the first `*` is a prefix.
    const normalized = normalizeSysctlName(pattern);
    const star = normalized.indexOf('*');
    if (star >= 0) allowedPrefixes.push(normalized.slice(0, star));
    else allowedExact.add(normalized);
  }
  const minimumMap = new Map<string, number>();
  for (const [name, value] of Object.entries(minimums)) {
    if (typeof value === 'number' && Number.isFinite(value)) minimumMap.set(normalizeSysctlName(name), value);
  }
  return { params: { allowedExact, allowedPrefixes, minimums: minimumMap }, key };
}

export function compilePolicy(policy: ConcurrencyPolicy): CompiledPolicy {
  const spec = policy.spec ?? {};
  const base = enforcementOf(spec.enforcement, 'Audit');
  const compiled: CompiledPolicy = {
    name: policy.metadata?.name ?? '',
    generation: policy.metadata?.generation,
    matches: compileMatch(spec.match),
  };
  if (spec.gomaxprocs) {
    const params: GomaxprocsParams = { maxOverCPULimit: Math.floor(nonNegative(spec.gomaxprocs.maxOverCPULimit, 0)) };
    compiled.gomaxprocs = { params, key: JSON.stringify(params), enforcement: enforcementOf(spec.gomaxprocs.enforcement, base) };
  }
  if (spec.ulimits) {
    const u = spec.ulimits;
    const params: UlimitParams = {
      nofileMinSoft: nonNegative(u.nofile?.minSoft, 0),
      nofileMinPerCPU: nonNegative(u.nofile?.minPerCPU, 0),
      nprocMinPerCPU: nonNegative(u.nproc?.minPerCPU, 0),
      onUndeclared: u.onUndeclared === 'Warn' ? 'Warn' : 'Ignore',
      runtimeNofile: {
        soft: nonNegative(u.runtimeDefaults?.nofile?.soft, DEFAULT_RUNTIME_NOFILE.soft),
        hard: nonNegative(u.runtimeDefaults?.nofile?.hard, DEFAULT_RUNTIME_NOFILE.hard),
      },
    };
    compiled.ulimits = { params, key: JSON.stringify(params), enforcement: enforcementOf(u.enforcement, base) };
  }
  if (spec.sysctls) {
    const { params, key } = compileSysctlParams(spec.sysctls.allowedUnsafe ?? [], spec.sysctls.minimums ?? {});
    compiled.sysctls = { params, key, enforcement: enforcementOf(spec.sysctls.enforcement, base) };
  }
  return compiled;
}

function groupBy<P>(policies: readonly CompiledPolicy[], family: (p: CompiledPolicy) => FamilySettings<P> | undefined): FamilyGroup<P>[] {
  const groups = new Map<string, { params: P; members: { index: number; enforcement: Enforcement }[] }>();
  policies.forEach((policy, index) => {
    const settings = family(policy);
    if (!settings) return;
    const group = groups.get(settings.key);
    if (group) group.members.push({ index, enforcement: settings.enforcement });
    else groups.set(settings.key, { params: settings.params, members: [{ index, enforcement: settings.enforcement }] });
  });
  return [...groups.values()];
}

/** Compile once per policy generation and reuse the result for every request. */
export function compilePolicies(policies: readonly ConcurrencyPolicy[], options: CompileOptions = {}): CompiledPolicies {
  const compiled = policies.map(compilePolicy);
  return {
    policies: compiled,
    groups: {
      gomaxprocs: groupBy(compiled, (p) => p.gomaxprocs),
      ulimits: groupBy(compiled, (p) => p.ulimits),
      sysctls: groupBy(compiled, (p) => p.sysctls),
    },
    matched: new Uint8Array(compiled.length),
    excludedNamespaces: new Set([...ALWAYS_EXCLUDED_NAMESPACES, ...(options.excludedNamespaces ?? [])]),
    safeSysctls: safeSysctls(options.versions ?? DEFAULT_VERSIONS),
  };
}
