// Evaluation of one pod spec (a Pod or a workload's template) against compiled policies: match policies,
// group them by family parameters, run each family once per distinct parameter set, and merge findings
// so each carries the strictest enforcement among the policies that raise it.
import type { V1LimitRange } from '@kubernetes/client-node';
import type { Enforcement } from '../api/index.ts';
import type { CompiledPolicies, FamilySettings } from './compile.ts';
import type { Emit, Finding, RawFinding } from './findings.ts';
import { stricter, weaker } from './findings.ts';
import type { PodFacts } from './facts.ts';
import { podFactsOf, podLocationOf } from './facts.ts';
import type { Labels } from './labels.ts';
import { asRecord, asString, asStringRecord } from './shape.ts';
import type { GomaxprocsParams } from './rules/gomaxprocs.ts';
import { checkGomaxprocs } from './rules/gomaxprocs.ts';
import type { UlimitParams } from './rules/ulimits.ts';
import { checkNriContainers, checkUlimits } from './rules/ulimits.ts';
import type { SysctlParams } from './rules/sysctls.ts';
import { checkSysctls } from './rules/sysctls.ts';

export interface EvaluationInput {
  /** Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob (others yield nothing). */
  kind: string;
  object: unknown;
  /** Defaults to the object's metadata.namespace, then "default". */
  namespace?: string;
  /** The namespace's labels; `kubernetes.io/metadata.name` is added when missing. */
  namespaceLabels?: Labels;
  /** The namespace's LimitRanges (LimitRanger's defaults are applied to the evaluation, not the object). */
  limitRanges?: readonly V1LimitRange[];
  /** Ceiling for every finding (Warn for children of admitted workloads and ephemeral containers). */
  cap?: Enforcement;
}

export interface Evaluation {
  findings: Finding[];
  /** Names of the policies that matched (for status and metrics). */
  matchedPolicies: string[];
}

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
const EMPTY: Evaluation = { findings: [], matchedPolicies: [] };

/** The policies a finding is credited to, and the strictest enforcement among them. */
interface Credit {
  enforcement: Enforcement;
  policies: string[];
}

interface Bucket<P> extends Credit {
  settings: FamilySettings<P>;
}

function addToBuckets<P>(buckets: Map<string, Bucket<P>>, settings: FamilySettings<P>, policy: string): void {
  const bucket = buckets.get(settings.key);
  if (bucket) {
    bucket.enforcement = stricter(bucket.enforcement, settings.enforcement);
    bucket.policies.push(policy);
  } else {
    buckets.set(settings.key, { settings, enforcement: settings.enforcement, policies: [policy] });
  }
}

function templateLabels(kind: string, object: unknown): Labels {
  const location = podLocationOf(kind);
  if (!location) return undefined;
  let node = asRecord(object);
  for (const segment of location.root) node = asRecord(node?.[segment]);
  return asStringRecord(asRecord(node?.metadata)?.labels);
}

export function evaluate(compiled: CompiledPolicies, input: EvaluationInput): Evaluation {
  if (!podLocationOf(input.kind)) return EMPTY;
  const metadata = asRecord(asRecord(input.object)?.metadata);
  const namespace = input.namespace ?? asString(metadata?.namespace) ?? 'default';
  if (compiled.excludedNamespaces.has(namespace)) return EMPTY;
  let namespaceLabels = input.namespaceLabels;
  if (namespaceLabels?.[NAMESPACE_NAME_LABEL] !== namespace) namespaceLabels = { ...namespaceLabels, [NAMESPACE_NAME_LABEL]: namespace };
  const labels = templateLabels(input.kind, input.object);

  const matched: string[] = [];
  let gomaxprocs: Map<string, Bucket<GomaxprocsParams>> | undefined;
  let ulimits: Map<string, Bucket<UlimitParams>> | undefined;
  let sysctls: Map<string, Bucket<SysctlParams>> | undefined;
  for (const policy of compiled.policies) {
    if (policy.excludeNamespaces.has(namespace)) continue;
    if (!policy.matchNamespace(namespaceLabels) || !policy.matchPod(labels)) continue;
    if (policy.excludePod?.(labels)) continue;
    matched.push(policy.name);
    if (policy.gomaxprocs) addToBuckets((gomaxprocs ??= new Map<string, Bucket<GomaxprocsParams>>()), policy.gomaxprocs, policy.name);
    if (policy.ulimits) addToBuckets((ulimits ??= new Map<string, Bucket<UlimitParams>>()), policy.ulimits, policy.name);
    if (policy.sysctls) addToBuckets((sysctls ??= new Map<string, Bucket<SysctlParams>>()), policy.sysctls, policy.name);
  }
  if (matched.length === 0 || (!gomaxprocs && !ulimits && !sysctls)) return { findings: [], matchedPolicies: matched };

  const facts = podFactsOf(input.kind, input.object, input.limitRanges, namespace);
  if (!facts) return { findings: [], matchedPolicies: matched };

  const findings = new Map<string, Finding>();
  const contextCap = input.cap ?? 'Deny';
  const emitFor = (bucket: Credit): Emit => (raw: RawFinding) => record(findings, facts, raw, bucket, contextCap);

  for (const bucket of gomaxprocs?.values() ?? []) {
    const emit = emitFor(bucket);
    for (const c of facts.containers) checkGomaxprocs(facts, c, bucket.settings.params, emit);
  }
  for (const bucket of ulimits?.values() ?? []) {
    const emit = emitFor(bucket);
    for (const c of facts.containers) checkUlimits(facts, c, bucket.settings.params, emit);
    checkNriContainers(facts, emit);
  }
  if (facts.sysctls.length > 0) {
    for (const bucket of sysctls?.values() ?? []) {
      checkSysctls(facts, bucket.settings.params, compiled.safeSysctls, emitFor(bucket));
    }
  }
  return { findings: [...findings.values()], matchedPolicies: matched };
}

function record(findings: Map<string, Finding>, facts: PodFacts, raw: RawFinding, bucket: Credit, contextCap: Enforcement): void {
  let enforcement = weaker(weaker(bucket.enforcement, raw.cap), contextCap);
  // A finding that rests on a LimitRange default is at most a warning on a template: LimitRanger
  // defaults only Pods, so the template itself does not carry the value.
  if (facts.location.isTemplate && (raw.values.cpuLimitDefaulted === true || raw.values.cpuRequestDefaulted === true)) enforcement = weaker(enforcement, 'Warn');
  if (raw.container !== undefined && isEphemeral(facts, raw.container)) enforcement = weaker(enforcement, 'Warn');
  const key = `${raw.rule}|${raw.container ?? ''}|${raw.subject}`;
  const existing = findings.get(key);
  if (existing) {
    if (stricter(existing.enforcement, enforcement) !== existing.enforcement) {
      existing.enforcement = enforcement;
      existing.message = raw.message;
      existing.values = raw.values;
    }
    for (const policy of bucket.policies) if (!existing.policies.includes(policy)) existing.policies.push(policy);
    return;
  }
  const finding: Finding = {
    rule: raw.rule,
    path: raw.path,
    values: raw.values,
    message: raw.message,
    fix: raw.fix,
    enforcement,
    policies: [...bucket.policies],
    key,
  };
  if (raw.container !== undefined) finding.container = raw.container;
  const patch = raw.patch?.();
  if (patch && patch.length > 0) finding.patch = patch;
  findings.set(key, finding);
}

function isEphemeral(facts: PodFacts, name: string): boolean {
  for (const c of facts.containers) if (c.name === name) return c.list === 'ephemeralContainers';
  return false;
}
